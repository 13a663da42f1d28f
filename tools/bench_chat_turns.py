#!/usr/bin/env python3
"""bench_chat_turns.py: what kept sessions save in a multi-turn chat.  Starts rosa-server on a
random Qwen3-shaped ROSA checkpoint with windowed attention and the real Qwen3 tokenizer, runs a
10-turn chat (user messages of ~100-300 tokens or --user-words, 200-token answers, streamed,
--think-s seconds between turns) once with a session_id and once without, and prints per turn:
prompt tokens, cached_tokens, reuse %, time to first token and total time.  Each turn sends the
whole conversation, as chat clients do, so the Qwen3 template drops the empty think block of the
previous answer: the server prepares the session for that while idle (between turns), or the
request rolls it back (docs/SERVER.md, Sessions).

The checkpoint (bf16, written with the standard library only: random bits with a fixed
exponent range) is cached under --cache-dir.  Needs only the Python standard library.

Usage: tools/bench_chat_turns.py [--server build/server/rosa-server]
         [--tokenizer ../shared/tokenizer/qwen3/tokenizer.json] [--turns 10] [--answer 200]
         [--hidden 256] [--layers 6] [--window 256] [--threads 2] [--user-words 80,220]
         [--think-s 0] [-- extra rosa-server args]
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 151669


# ------------------------------------------------------------------ random checkpoint

def bf16_random(n, rng, exp7):
    """n random bf16 values with |x| in [2^(2*exp7 - 127), 2^(2*exp7 - 125)), random sign."""
    buf = bytearray(rng.randbytes(2 * n))
    # little endian: byte 1 = sign + 7 high exponent bits; byte 0 = exponent lsb + mantissa
    table = bytes((b & 0x80) | exp7 for b in range(256))
    buf[1::2] = bytes(buf[1::2]).translate(table)
    return bytes(buf)


def bf16_ones(n):
    return b"\x80\x3f" * n


def write_model(d, hidden, layers, heads, kv_heads, head_dim, ffn, seed=1):
    """config.json + model.safetensors (ROSA weights on layers 1..L-1, as rosa-cli bench)."""
    os.makedirs(d, exist_ok=True)
    rng = random.Random(seed)
    # exponent ranges: embeddings ~[0.5, 2), matrices ~[1/32, 1/8) (about 1/sqrt(hidden)), ROSA
    # vectors ~[0.125, 0.5)
    emb, mat, vec = 63, 61, 62
    tensors = [("model.embed_tokens.weight", [VOCAB, hidden], emb),
               ("model.norm.weight", [hidden], None)]
    for layer in range(layers):
        p = "model.layers.%d." % layer
        tensors += [(p + "input_layernorm.weight", [hidden], None),
                    (p + "post_attention_layernorm.weight", [hidden], None),
                    (p + "self_attn.q_proj.weight", [heads * head_dim, hidden], mat),
                    (p + "self_attn.k_proj.weight", [kv_heads * head_dim, hidden], mat),
                    (p + "self_attn.v_proj.weight", [kv_heads * head_dim, hidden], mat),
                    (p + "self_attn.o_proj.weight", [hidden, heads * head_dim], mat),
                    (p + "self_attn.q_norm.weight", [head_dim], None),
                    (p + "self_attn.k_norm.weight", [head_dim], None),
                    (p + "mlp.gate_proj.weight", [ffn, hidden], mat),
                    (p + "mlp.up_proj.weight", [ffn, hidden], mat),
                    (p + "mlp.down_proj.weight", [hidden, ffn], mat)]
        if layer > 0:
            tensors += [(p + n + ".weight", [hidden, hidden], mat)
                        for n in ("rosa_q_proj", "rosa_k_proj", "rosa_v_proj", "rosa_out")]
            tensors += [(p + n, [hidden], vec) for n in ("rosa_e0", "rosa_e1", "rosa_alpha")]
    header, off = {}, 0
    for name, shape, _ in tensors:
        n = 1
        for s in shape:
            n *= s
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + 2 * n]}
        off += 2 * n
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = os.path.join(d, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for name, shape, exp7 in tensors:
            n = 1
            for s in shape:
                n *= s
            f.write(bf16_ones(n) if exp7 is None else bf16_random(n, rng, exp7))
    cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": VOCAB,
           "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
           "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "tie_word_embeddings": True, "max_position_embeddings": 40960,
           "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "bfloat16"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    os.rename(tmp, os.path.join(d, "model.safetensors"))


# ------------------------------------------------------------------ server and requests

class Server:
    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="rosa-bench-chat-")
        self.log = open(os.path.join(self.dir, "server.log"), "a+")
        self.proc = subprocess.Popen(args + ["--port", "0", "--host", "127.0.0.1"],
                                     stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + 300
        while time.time() < deadline:
            self.log.seek(0)
            text = self.log.read()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            if m and self.port is None:
                self.port = int(m.group(1))
            if self.port and self.get("/health")[0] == 200:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise SystemExit("rosa-server did not start:\n" + text[-3000:])

    def get(self, path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        except OSError:
            return 0, b""

    def metric(self, name):
        for line in self.get("/metrics")[1].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def chat(self, body):
        """Streamed chat: (answer text, usage, seconds to the first token, total seconds)."""
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit("HTTP %d: %s" % (r.status, r.read()[:500]))
        text, usage, ttft, buf = [], None, None, b""
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if "error" in ev:
                raise SystemExit("stream error: %s" % ev["error"])
            for ch in ev.get("choices", []):
                d = ch.get("delta", {})
                if ttft is None and (d.get("content") or ch.get("token_ids")):
                    ttft = time.perf_counter() - t0
                text.append(d.get("content") or "")
            if ev.get("usage"):
                usage = ev["usage"]
        c.close()
        total = time.perf_counter() - t0
        return "".join(text), usage, ttft if ttft is not None else total, total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


WORDS = ("the of and to in is that for it as with was on be by this are from at or an which "
         "automaton suffix state window attention route token memory session rollback prefix "
         "server engine model layer query key value cache stream answer question turn chat "
         "longest common history kept rebuilt horizon exact logits sampler batch prefill decode "
         "latency throughput budget eviction counter metric request response client template "
         "reasoning paragraph example detail summary compare explain describe why how when "
         "where Paris Tokyo river mountain 1997 42 3.14 coffee bicycle library winter").split()


def user_message(rng, turn, words):
    n = rng.randint(*words)  # 80-220 words: ~100-300 tokens; 12-40: ~20-60
    words = [rng.choice(WORDS) for _ in range(n)]
    return "Question %d: %s?" % (turn, " ".join(words))


def run_chat(srv, turns, answer, session, seed, words, think):
    rng = random.Random(seed)
    msgs = [{"role": "system", "content": "You are a helpful assistant. Answer at length."}]
    rows, answers = [], []
    for k in range(turns):
        if k and think:  # the user reads and types (the server may prepare the session)
            time.sleep(think)
        msgs.append({"role": "user", "content": user_message(rng, k + 1, words)})
        body = {"messages": msgs, "max_tokens": answer, "temperature": 0, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}
        if session:
            body["session_id"] = session
        text, usage, ttft, total = srv.chat(body)
        cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        rows.append((k + 1, usage["prompt_tokens"], cached, usage["completion_tokens"], ttft,
                     total))
        answers.append(text)
        msgs.append({"role": "assistant", "content": text})
    return rows, answers


def print_rows(title, rows):
    print("\n" + title)
    print("| turn | prompt tokens | cached_tokens | reuse % | answer tokens | TTFT s | total s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for t, p, c, a, ttft, total in rows:
        print("| %d | %d | %d | %.1f | %d | %.3f | %.2f |" % (t, p, c, 100.0 * c / p, a, ttft,
                                                              total))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = os.path.dirname(HERE)
    ap.add_argument("--server", default=os.path.join(src, "build", "server", "rosa-server"))
    ap.add_argument("--tokenizer",
                    default=os.path.join(src, "..", "shared", "tokenizer", "qwen3",
                                         "tokenizer.json"))
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(),
                                                        "rosa-bench-chat-models"))
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--answer", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=("session", "fresh"), help="run one of the two chats")
    ap.add_argument("--user-words", default="80,220",
                    help="LO,HI words per user message (80,220: ~100-300 tokens; 12,40: ~20-60)")
    ap.add_argument("--think-s", type=float, default=0.0,
                    help="seconds between a turn's answer and the next message (a user reading "
                         "and typing; the server prepares the session meanwhile)")
    ap.add_argument("extra", nargs="*", help="more rosa-server options (after --)")
    a = ap.parse_args()
    for what, lo, hi in (("turns", 1, 100), ("answer", 1, 4096), ("hidden", 64, 4096),
                         ("layers", 1, 64), ("window", 1, 1 << 20), ("threads", 1, 256)):
        v = getattr(a, what)
        if not lo <= v <= hi:
            raise SystemExit("--%s must be in [%d, %d]" % (what, lo, hi))
    try:
        words = tuple(int(x) for x in a.user_words.split(","))
        assert len(words) == 2 and 1 <= words[0] <= words[1] <= 5000
    except (ValueError, AssertionError):
        raise SystemExit("--user-words must be LO,HI with 1 <= LO <= HI <= 5000")
    if not 0 <= a.think_s <= 600:
        raise SystemExit("--think-s must be in [0, 600]")
    if not os.path.exists(a.server):
        raise SystemExit("no rosa-server at %s (--server)" % a.server)
    if not os.path.exists(a.tokenizer):
        raise SystemExit("no tokenizer at %s (--tokenizer)" % a.tokenizer)
    heads, head_dim = max(1, a.hidden // 64), 64
    shape = "q3-h%d-l%d" % (a.hidden, a.layers)
    model = os.path.join(a.cache_dir, shape)
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        print("writing a random %s checkpoint to %s ..." % (shape, model), file=sys.stderr)
        write_model(model, a.hidden, a.layers, heads, max(1, heads // 2), head_dim, 3 * a.hidden)
    args = [a.server, "--model", model, "--tokenizer", a.tokenizer, "--window", str(a.window),
            "--global-layers", "0", "--threads", str(a.threads), "--max-batch", "1",
            "--cache-dir", os.path.join(a.cache_dir, "server-cache")] + a.extra
    print("rosa-server %s" % " ".join(args[1:]))
    srv = Server(args)
    try:
        results = {}
        for mode in ("session", "fresh"):
            if a.only and a.only != mode:
                continue
            rows, answers = run_chat(srv, a.turns, a.answer, "bench" if mode == "session" else None,
                                     a.seed, words, a.think_s)
            results[mode] = (rows, answers)
            print_rows("with session_id (%s)" % mode if mode == "session"
                       else "without session_id (every turn from scratch)", rows)
        print("\nrollbacks %d, rebuilds beyond the horizon %d; chat preparation: %d tokens fed "
              "ahead, %d done, %d abandoned" % (
                  srv.metric("rosa_session_rollbacks_total"),
                  srv.metric("rosa_session_rollback_rebuilds_total"),
                  srv.metric("rosa_session_prepared_tokens_total") or 0,
                  srv.metric("rosa_session_preparations_total") or 0,
                  srv.metric("rosa_session_preparations_abandoned_total") or 0))
        if len(results) == 2:
            same = results["session"][1] == results["fresh"][1]
            print("answers identical with and without the session: %s" % ("yes" if same else "NO"))
            rows = results["session"][0]
            if len(rows) >= 2:
                ok = all(c >= 0.9 * p for _, p, c, _, _, _ in rows[1:])
                print("reuse >= 90%% from turn 2: %s; TTFT turn %d / turn 2: %.2f" % (
                    "yes" if ok else "no", rows[-1][0], rows[-1][4] / rows[1][4]))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
