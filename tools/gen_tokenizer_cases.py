#!/usr/bin/env python3
"""gen_tokenizer_cases.py: expected token ids from Hugging Face `tokenizers`, for the C tests.

Writes into tests/data/tokenizer/ (CI then needs no Python):
  qwen3_cases.jsonl      2,272 strings (English, Chinese, other scripts, code, numbers, emoji,
                         whitespace runs, CRLF, combining characters, special tokens in text,
                         invalid UTF-8, random Unicode) with their ids under the Qwen3 tokenizer
  demo_cases.jsonl       a subset, under the demo copy-model tokenizer
  synthetic/tokenizer.json + synthetic_cases.jsonl
                         a small byte-level BPE trained here whose pipeline uses what Qwen3 does
                         not (NFKC, GPT-2 ByteLevel regex, add_prefix_space, every Split
                         behaviour, invert, lstrip / rstrip / single_word / normalized added
                         tokens, ignore_merges), one line per (variant, string)
  chat_cases.jsonl       conversations rendered with a Jinja rendition of Qwen3's chat template

Line format: {"t": text} or {"t_hex": bytes} (text with a NUL or not valid UTF-8); "ids": ids with special
tokens parsed (HF's default); "ids_plain": ids with special tokens as text (HF's
encode_special_tokens = True), only where they differ; "nfc": HF's decode(ids) where it is not the
text itself (NFC changed it); "dec": HF's decode(ids) for invalid UTF-8 (with U+FFFD), and for
every synthetic case (whose pipeline does more than NFC); "variant": the synthetic pipeline.
"nfc" and "dec" too become "nfc_hex" / "dec_hex" when they hold a NUL.

Invalid UTF-8: HF cannot take it (it wants a str).  The engine cuts the text into well-formed runs
and runs of invalid bytes; a valid run is encoded as HF encodes it alone, an invalid run is one
BPE word.  The expected ids here are built the same way from HF's pieces: encode() for valid runs,
the BPE model's tokenize() on the byte-level form for invalid runs.

Usage: pip install tokenizers jinja2; tools/gen_tokenizer_cases.py [--shared DIR] [--out DIR]
"""
import argparse
import json
import os
import random
import sys
import unicodedata

from tokenizers import Tokenizer, models, pre_tokenizers, decoders, normalizers, trainers, Regex, AddedToken

# ---------------------------------------------------------------- UTF-8 runs (as the engine)

def seq_len(b, i):
    """Length of the well-formed UTF-8 sequence at b[i] (Unicode Table 3-7), or 0."""
    c = b[i]
    if c < 0x80:
        return 1
    lo, hi = 0x80, 0xBF
    if 0xC2 <= c <= 0xDF:
        n = 2
    elif 0xE0 <= c <= 0xEF:
        n = 3
        if c == 0xE0: lo = 0xA0
        if c == 0xED: hi = 0x9F
    elif 0xF0 <= c <= 0xF4:
        n = 4
        if c == 0xF0: lo = 0x90
        if c == 0xF4: hi = 0x8F
    else:
        return 0
    if i + n > len(b) or not (lo <= b[i + 1] <= hi):
        return 0
    if any((b[i + k] & 0xC0) != 0x80 for k in range(2, n)):
        return 0
    return n


def runs(b):
    out, i = [], 0
    while i < len(b):
        j = i
        while j < len(b) and seq_len(b, j):
            j += seq_len(b, j)
        if j > i:
            out.append((True, b[i:j]))
            i = j
            continue
        while j < len(b) and seq_len(b, j) == 0:
            j += 1
        out.append((False, b[i:j]))
        i = j
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()


def encode(tok, b, plain):
    tok.encode_special_tokens = plain
    ids = []
    for ok, r in runs(b):
        if ok:
            ids += tok.encode(r.decode("utf-8"), add_special_tokens=False).ids
        else:
            ids += [t.id for t in tok.model.tokenize("".join(BYTE_CHAR[c] for c in r))]
    tok.encode_special_tokens = False
    return ids


def put_text(rec, key, b, valid):
    """A string field, or KEY_hex where JSON-through-cJSON would not carry it (a NUL, bad UTF-8)."""
    if valid and b"\x00" not in b:
        rec[key] = b.decode("utf-8")
    else:
        rec[key + "_hex"] = b.hex()


def case(tok, item, nfc=True):
    b = item if isinstance(item, bytes) else item.encode("utf-8")
    valid = all(ok for ok, _ in runs(b)) or len(b) == 0
    rec = {}
    put_text(rec, "t", b, valid)
    ids = encode(tok, b, False)
    plain = encode(tok, b, True)
    rec["ids"] = ids
    if plain != ids:
        rec["ids_plain"] = plain
    dec = tok.decode(ids, skip_special_tokens=False)
    if valid and nfc:
        text = b.decode("utf-8")
        if dec != text:
            if dec != unicodedata.normalize("NFC", text):
                print("warning: HF decode differs from Python's NFC for %r" % text, file=sys.stderr)
            put_text(rec, "nfc", dec.encode("utf-8"), True)
    elif not valid or not nfc:
        put_text(rec, "dec", dec.encode("utf-8"), True)
    return rec

# ---------------------------------------------------------------- the corpus

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but "
         "have an had they you were their one all we can her has there been if more when will would who so "
         "no model server token language attention memory request response automaton suffix window context "
         "training inference throughput latency performance tokenizer encoding decoding character sequence "
         "probability distribution function variable structure algorithm implementation experiment "
         "government university history information development international community environment "
         "particularly approximately nevertheless Hello World Paris London January Monday OpenAI Qwen "
         "antidisestablishmentarianism pneumonoultramicroscopic COVID-19 e-mail re-enter co-operate "
         "GPU CPU API JSON HTTP URL iPhone McDonald O'Brien rock'n'roll").split()
CONTRACTIONS = ["don't", "it's", "we're", "they've", "I'm", "you'll", "she'd", "DON'T", "IT'S", "We'Re",
                "THEY'VE", "I'M", "YOU'LL", "SHE'D", "can't", "won't", "y'all", "'tis", "o'clock", "rock'n'roll",
                "it’s", "don’t"]
PUNCT = [",", ".", "!", "?", ";", ":", "...", " -", " —", " (", ")", "\"", "'", " [", "]", " {", "}", "/",
         "&", "#", "@", "%", "*", "+", "=", "<", ">", "|", "~", "`", "^", "$", "«", "»", "“", "”", "‘", "’"]
CJK = ("的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家"
       "十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知物工度机北京"
       "人工智能计算科学语言处理模型数据训练推理速度非常快今天气很我们去园散步吧请问你叫什么名字需要更")
CJK_PUNCT = ["，", "。", "！", "？", "、", "；", "：", "（", "）", "《", "》", "「", "」", "…", "—"]
SCRIPTS = [
    "こんにちは世界、これはテストです。", "カタカナとひらがなとKanji漢字", "東京都渋谷区", "ありがとうございました！",
    "안녕하세요 세계", "한국어 텍스트 처리", "서울특별시", "Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок",
    "Ελληνικά: Καλημέρα κόσμε", "مرحبا بالعالم", "اللغة العربية جميلة", "שלום עולם", "नमस्ते दुनिया", "हिन्दी भाषा",
    "สวัสดีชาวโลก", "ภาษาไทย", "Tiếng Việt có dấu: Xin chào thế giới", "ქართული ენა", "Բարեւ աշխարհ",
    "வணக்கம் உலகம்", "ব্যাংলা ভাষা", "ગુજરાતી", "Ἀρχιμήδης", "Türkçe İstanbul ılık", "Deutsch: Größe, Straße, Ärger",
    "français: Ça va? Où est l'hôtel?", "español: ¿Dónde está? ¡Hola! Año", "português: São Paulo, ação", "polski: Zażółć gęślą jaźń",
    "čeština: Příliš žluťoučký kůň", "Íslenska: Þetta er próf", "ᚠᛇᚻ᛫ᛒᛦᚦ", "ꦧꦱꦗꦮ", "ᠮᠣᠩᠭᠣᠯ",
]
CODE = [
    "int main(int argc, char **argv) {\n    return 0;\n}\n",
    "for (size_t i = 0; i < n; i++) {\n        sum += a[i] * b[i];\n    }",
    "def encode(self, text: str) -> list[int]:\n    return self._model.encode(text)\n",
    "if (rc != 0) {\n\tfprintf(stderr, \"error: %s\\n\", rosa_strerror(rc));\n\treturn rc;\n}",
    "const result = await fetch(`/v1/chat/completions`, { method: 'POST' });",
    "    x = np.zeros((batch_size, seq_len), dtype=np.float32)\n",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01';",
    "{\"model\": \"qwen3\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
    "<div class=\"container\"><p>Hello &amp; welcome</p></div>",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n",
    "$ ls -la | grep '\\.c$' && make -j$(nproc) 2>&1 | tee build.log",
    "    }\n  }\n}\n\n\n",
    "x+=1;y-=2;z*=3;w/=4;a%=5;b<<=1;c>>=2;d&=e|f^g",
    "lambda x: x**2 if x>0 else -x  # comment\n",
    "\t\tcase 'a': return 0x1F;\r\n\t\tdefault: break;\r\n",
    "/* block\n * comment\n */\n// line comment\n",
    "array[0][1] = {\"key\": [1, 2.5, -3e10, null, true]};",
    "a == b != c <= d >= e && f || !g",
    "https://example.com/path?q=1&r=two#frag",
    "user@example.com, admin+tag@sub.domain.org",
    "C:\\Users\\name\\Documents\\file.txt",
    "    def __init__(self):\n        super().__init__()\n        self.x = None\n",
]
EMOJI = ["😀", "😂", "🚀", "👍", "👍🏽", "👍🏿", "👨‍👩‍👧", "👩‍💻", "🏳️‍🌈", "🇫🇷", "🇯🇵", "🇺🇸", "❤️", "✨", "🔥", "💯",
         "1️⃣", "#️⃣", "©️", "™", "🤖", "🧠", "🦀", "🐍", "☕", "⭐", "🌍", "🎉", "🙏", "🤷‍♀️", "🧑🏽‍🔬", "🫠"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2002", "\u2003", "\u3000", "\u0085", "\u2028",
          "\u2029", "\u180e", "\u200b", "\ufeff", "\x0b", "\x0c", "\u205f", "\u1680", "\u202f", "\u2009"]
COMBINING = [
    "e\u0301", "a\u0308", "n\u0303", "o\u0302\u0301", "a\u0323\u0307", "a\u0307\u0323", "u\u0308\u0304",
    "\u1100\u1161\u11a8", "\u1112\u1161\u11ab", "\u212b", "\u2126", "\u1e9b\u0323", "\ufb01", "\uf900", "\uf9d7",
    "\u304b\u3099", "\u30cf\u309a", "\u0041\u030a", "\u00c5", "\u0301", "\u0301abc", "Z\u0351\u0354\u0363\u036b\u0353",
    "\u0915\u093c", "\u0928\u093c", "\u0627\u0653", "\u05d1\u05bc", "\u0e01\u0e49", "i\u0307", "\u03b9\u0308\u0301",
    "\u1f00\u0345", "\u0340", "\u0344", "\u0374", "\u037e", "\u0387", "\u2000", "\u2001", "\u212a", "\u2329",
    "\uac00\u11a8", "\u1100\u1161", "\u0f73", "\u0f75", "\u0f81", "\u1b05\u1b35", "\U0001d15e", "\U0001d160",
    "\u00e9\u0301", "\u0065\u0327\u0301", "\u1e69", "s\u0323\u0307", "s\u0307\u0323",
]
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
         "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
         "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
         "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
         "</tool_response>", "<think>", "</think>"]
RANGES = [(0x20, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x531, 0x58A),
          (0x591, 0x5F4), (0x600, 0x6FF), (0x900, 0x97F), (0xE01, 0xE5B), (0x10A0, 0x10FF), (0x1100, 0x11FF),
          (0x1E00, 0x1EFF), (0x1F00, 0x1FFE), (0x2000, 0x206F), (0x2070, 0x209C), (0x20A0, 0x20BF),
          (0x2100, 0x218B), (0x2190, 0x22FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3041, 0x30FF),
          (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xF900, 0xFA2D), (0xFB00, 0xFB4F), (0xFB50, 0xFDFF),
          (0xFE30, 0xFE4F), (0xFF01, 0xFFEE), (0x1F300, 0x1F64F), (0x1D400, 0x1D7FF), (0xE000, 0xE0FF),
          (0x1F900, 0x1F9FF), (0x10000, 0x1007F), (0x1F100, 0x1F1FF)]


def rand_cp(rng):
    while True:
        lo, hi = rng.choice(RANGES)
        c = chr(rng.randint(lo, hi))
        if unicodedata.category(c) not in ("Cn", "Cs"):
            return c


def sentence(rng, n=None):
    n = n or rng.randint(3, 18)
    out = []
    for i in range(n):
        w = rng.choice(CONTRACTIONS) if rng.random() < 0.1 else rng.choice(WORDS)
        if i == 0 or rng.random() < 0.05:
            w = w[:1].upper() + w[1:]
        if rng.random() < 0.03:
            w = w.upper()
        out.append(w)
        if rng.random() < 0.1:
            out[-1] += rng.choice(PUNCT)
    return " ".join(out) + rng.choice([".", "!", "?", "", "...", ":"])


def chinese(rng):
    s = ""
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        s += rng.choice(CJK_PUNCT) if r < 0.1 else (rng.choice(WORDS) + " " if r < 0.15 else
                                                      (str(rng.randint(0, 2024)) if r < 0.18 else rng.choice(CJK)))
    return s


def number(rng):
    forms = [
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
        lambda: "%d.%d" % (rng.randint(0, 9999), rng.randint(0, 99999)),
        lambda: "{:,}".format(rng.randint(1000, 10 ** 9)),
        lambda: "%d-%02d-%02d" % (rng.randint(1900, 2100), rng.randint(1, 12), rng.randint(1, 28)),
        lambda: "+1 (%03d) %03d-%04d" % (rng.randint(0, 999), rng.randint(0, 999), rng.randint(0, 9999)),
        lambda: "$%d.%02d" % (rng.randint(0, 10 ** 6), rng.randint(0, 99)),
        lambda: "%.3e" % (rng.random() * 10 ** rng.randint(-20, 20)),
        lambda: "".join(rng.choice("٠١٢٣٤٥٦٧٨٩") for _ in range(rng.randint(1, 6))),
        lambda: "".join(rng.choice("０１２３４５６７８９") for _ in range(rng.randint(1, 6))),
        lambda: rng.choice(["x²", "10³", "½", "¾", "Ⅻ", "ⅷ", "①②③", "₀₁₂", "𝟙𝟚𝟛", "໑໒", "४२"]),
        lambda: "v%d.%d.%d-rc%d" % (rng.randint(0, 20), rng.randint(0, 20), rng.randint(0, 99), rng.randint(1, 9)),
        lambda: "0x%X 0b%s 0o%o" % (rng.randint(0, 2 ** 32), bin(rng.randint(0, 255))[2:], rng.randint(0, 511)),
        lambda: "%d%%" % rng.randint(0, 100),
        lambda: "3.14159265358979323846264338327950288419716939937510",
    ]
    return " ".join(rng.choice(forms)() for _ in range(rng.randint(1, 4)))


def whitespace(rng):
    parts = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.3:
            parts.append(" " * rng.randint(1, 40))
        elif r < 0.5:
            parts.append("".join(rng.choice(SPACES) for _ in range(rng.randint(1, 6))))
        elif r < 0.65:
            parts.append(rng.choice(["\r\n", "\n", "\r", "\n\n", "\r\n\r\n", " \r\n", "\t\n", "  \n  "]) * rng.randint(1, 3))
        elif r < 0.9:
            parts.append(rng.choice(WORDS))
        else:
            parts.append(rng.choice(PUNCT))
    return "".join(parts)


def special_text(rng):
    pieces = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.35:
            pieces.append(rng.choice(ADDED))
        elif r < 0.45:
            t = rng.choice(ADDED)
            pieces.append(t[:rng.randint(1, len(t) - 1)])  # a partial token
        elif r < 0.5:
            pieces.append(rng.choice(ADDED).upper())
        elif r < 0.8:
            pieces.append(rng.choice([" ", "\n", "", "user\n", "assistant\n", "system\n"]) + sentence(rng, rng.randint(1, 5)))
        else:
            pieces.append(rng.choice(["<", "|", ">", "<|", "|>", "<<", ">>", "</", "<|<|", "|>|>"]))
    return "".join(pieces)


def invalid(rng):
    r = rng.random()
    if r < 0.2:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 20)))
    pieces = []
    for _ in range(rng.randint(1, 5)):
        q = rng.random()
        if q < 0.4:
            pieces.append(rng.choice([b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                                      b"\xf5\x80\x80\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xbf", b"\x80\x80\x80",
                                      b"\xc3", b"\xe4\xbd", b"\xf0\x9f\x98", b"\xf0\x9f", b"\xc2\x41", b"\xe2\x82",
                                      b"\xf8\x88\x80\x80\x80", b"\xc1\xbf", b"\xfc"]))
        elif q < 0.55:
            s = rng.choice(CJK + "😀é").encode()
            pieces.append(s[:rng.randint(1, len(s) - 1)] if len(s) > 1 else b"\x80")
        elif q < 0.65:
            pieces.append(rng.choice(ADDED).encode())
        else:
            pieces.append(rng.choice([sentence(rng, 3), " ", "  ", "\n", chinese(rng)[:5], " é"]).encode())
    return b"".join(pieces)


def random_unicode(rng):
    return "".join(rand_cp(rng) if rng.random() < 0.85 else rng.choice(" \n\t'0a") for _ in range(rng.randint(1, 30)))


def document(rng):
    gens = [sentence, chinese, number, whitespace, lambda r: r.choice(CODE), lambda r: r.choice(SCRIPTS),
            lambda r: r.choice(EMOJI)]
    return "".join(rng.choice(gens)(rng) + rng.choice([" ", "\n", "", "\r\n"]) for _ in range(rng.randint(8, 25)))


def corpus(seed=20240601):
    rng = random.Random(seed)
    items = ["", " ", "  ", "\n", "\r\n", "a", "A", "'s", "'S", "x'ſa", "a \u180eb", "a   b", "a   \nb", "a\n\n\nb",
             "end   ", "   start", "\t\tindent", "a" * 300, "ab" * 150, "1" * 64, "!" * 50, "😀" * 20, "中" * 60,
             "<|im_start|>" * 3, "<|im_end|><|im_end|>", "<think>\n\n</think>\n\n", "Hello\u0301", "\u0301",
             "\r\r\n\n\r", "x" + " " * 100 + "y", "I'M SO HAPPY'LL'D", "it's 'tis 'TIS 'll 'Ll 'lL"]
    items += [chr(c) for c in range(0, 128)]                         # every ASCII character alone
    items += [bytes([b]) for b in range(0x80, 0x100)]                # every non-ASCII byte alone
    items += [sentence(rng) for _ in range(250)]
    items += [" ".join(sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(30)]
    items += [chinese(rng) for _ in range(160)]
    items += [rng.choice(SCRIPTS) + (" " + rng.choice(SCRIPTS) if rng.random() < 0.5 else "") for _ in range(100)]
    items += SCRIPTS
    items += CODE
    items += ["".join(rng.choice(CODE) for _ in range(rng.randint(1, 3))) for _ in range(80)]
    items += [number(rng) for _ in range(120)]
    items += EMOJI
    items += ["".join(rng.choice(EMOJI) + rng.choice(["", " ", "x", "\n"]) for _ in range(rng.randint(1, 8)))
              for _ in range(100)]
    items += [whitespace(rng) for _ in range(200)]
    items += COMBINING
    items += ["".join(rng.choice(COMBINING + list("abc xyz") + CJK_PUNCT) for _ in range(rng.randint(1, 10)))
              for _ in range(120)]
    items += ADDED
    items += [special_text(rng) for _ in range(200)]
    items += [invalid(rng) for _ in range(200)]
    items += [random_unicode(rng) for _ in range(250)]
    items += [document(rng) for _ in range(6)]
    return items

# ---------------------------------------------------------------- synthetic tokenizer

def synthetic(train_text):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(train_text, trainer=trainer)
    tok.add_special_tokens([AddedToken("<s>", lstrip=True, rstrip=True, special=True, normalized=False),
                            AddedToken("</s>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("[MASK]", single_word=True, normalized=False),
                    AddedToken("ﬁx", normalized=True),          # matched as "fix" after NFKC
                    AddedToken("zz", normalized=False, lstrip=True)])
    return tok


VARIANTS = [
    ("isolated", {"type": "Split", "pattern": {"Regex": r"\d{1,3}"}, "behavior": "Isolated", "invert": False}),
    ("removed", {"type": "Split", "pattern": {"String": "-"}, "behavior": "Removed", "invert": False}),
    ("merged_prev", {"type": "Split", "pattern": {"Regex": r"[,.;]"}, "behavior": "MergedWithPrevious", "invert": False}),
    ("merged_next", {"type": "Split", "pattern": {"Regex": r"\s"}, "behavior": "MergedWithNext", "invert": False}),
    ("contiguous", {"type": "Split", "pattern": {"Regex": r"\p{N}"}, "behavior": "Contiguous", "invert": False}),
    ("invert", {"type": "Split", "pattern": {"Regex": r"[a-z]+"}, "behavior": "Removed", "invert": True}),
]


def synthetic_cases(base_json, rng, texts):
    out = []
    for name, split in VARIANTS:
        j = json.loads(base_json)
        j["pre_tokenizer"]["pretokenizers"][0] = split
        tok = Tokenizer.from_str(json.dumps(j))
        for t in texts:
            rec = case(tok, t, nfc=False)
            rec["variant"] = name
            out.append(rec)
    return out

# ---------------------------------------------------------------- chat

# The message loop of Qwen3's chat template (no tools), written out for jinja2.
QWEN3_CHAT = r"""{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}
{%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}
{%- for message in messages %}{%- set content = message.content %}
{%- if (message.role == "user") or (message.role == "system" and not loop.first) %}{{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
{%- elif message.role == "assistant" %}{%- set reasoning_content = '' %}
{%- if '</think>' in content %}{%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}{%- set content = content.split('</think>')[-1].lstrip('\n') %}{%- endif %}
{%- if loop.index0 > ns.last_query_index %}{%- if loop.last or (not loop.last and reasoning_content) %}{{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
{%- else %}{{- '<|im_start|>' + message.role + '\n' + content }}{%- endif %}
{%- else %}{{- '<|im_start|>' + message.role + '\n' + content }}{%- endif %}{{- '<|im_end|>\n' }}
{%- elif message.role == "tool" %}{%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\n<tool_response>\n' }}{{- content }}{{- '\n</tool_response>' }}
{%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\n' }}{%- endif %}{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}{%- endif %}"""


def chat_cases(rng):
    import jinja2
    tpl = jinja2.Environment().from_string(QWEN3_CHAT)
    contents = ["Hello!", "What is 2+2?", "", "line1\nline2", "<think>\nplan\n</think>\n\nAnswer.",
                "<think>a</think>b", "\n\n<think>\n\nx\n\n</think>\n\n\ny", "no think here</think>tail",
                "<tool_response>{\"ok\": true}</tool_response>", "你好，世界", "😀 emoji", "  spaced  ",
                "<think>one</think><think>two</think>three", "text <|im_end|> inside"]
    roles = ["system", "user", "assistant", "tool"]
    fixed = [
        [("user", "Hi")],
        [("system", "You are helpful."), ("user", "Hi")],
        [("user", "Hi"), ("assistant", "<think>\nhmm\n</think>\n\nHello!"), ("user", "Again")],
        [("user", "Hi"), ("assistant", "<think>\nhmm\n</think>\n\nHello!")],
        [("user", "q"), ("assistant", "calling"), ("tool", "r1"), ("tool", "r2"), ("assistant", "<think>x</think>done")],
        [("system", "s"), ("user", "u"), ("system", "s2"), ("user", "u2")],
    ]
    convs = fixed + [[(rng.choice(roles if i else ["system", "user"]), rng.choice(contents))
                      for i in range(rng.randint(1, 6))] for _ in range(60)]
    out = []
    for conv in convs:
        for gen, think in [(True, True), (True, False)] + ([(False, True)] if len(out) < 30 else []):
            msgs = [{"role": r, "content": c} for r, c in conv]
            kw = {"add_generation_prompt": gen}
            if not think:
                kw["enable_thinking"] = False
            out.append({"msgs": [[r, c] for r, c in conv], "gen": gen, "think": think,
                        "out": tpl.render(messages=msgs, **kw)})
    return out

# ---------------------------------------------------------------- main

def write_jsonl(path, recs):
    with open(path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    print("wrote %s (%d lines, %d bytes)" % (path, len(recs), os.path.getsize(path)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer"))
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "synthetic"), exist_ok=True)

    items = corpus()
    qwen = Tokenizer.from_file(os.path.join(a.shared, "tokenizer", "qwen3", "tokenizer.json"))
    write_jsonl(os.path.join(a.out, "qwen3_cases.jsonl"), [case(qwen, t) for t in items])

    rng = random.Random(7)
    demo = Tokenizer.from_file(os.path.join(a.shared, "demo", "copy-model", "model", "tokenizer.json"))
    demo_items = [t for t in items if len(t) < 40]
    write_jsonl(os.path.join(a.out, "demo_cases.jsonl"), [case(demo, t) for t in rng.sample(demo_items, 150)])

    train = [t for t in items if isinstance(t, str)] * 3
    syn = synthetic(train)
    syn_json = syn.to_str()
    with open(os.path.join(a.out, "synthetic", "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(syn_json)
    texts = ["Hello world 12345 fix ﬁx fixing <s> a <s>b", "  <s>  x  </s>", "[MASK] a[MASK] [MASK]b [MASK].",
             "a-b-c--d", "one, two. three;", "x y  z", "abc123def4567", "Ünïcödé ﬁ ligature ①", "  zz zz  zzz",
             "ABC def GHI", "", "\xa0\u2003nbsp", "'s 'S it's"] + rng.sample([t for t in items if isinstance(t, str)
                                                                             and len(t) < 60], 30) + \
            [t for t in items if isinstance(t, bytes)][:15]
    write_jsonl(os.path.join(a.out, "synthetic_cases.jsonl"), synthetic_cases(syn_json, rng, texts))

    write_jsonl(os.path.join(a.out, "chat_cases.jsonl"), chat_cases(random.Random(11)))


if __name__ == "__main__":
    main()
