"""test_text.py: the text paths of rosa-server over real HTTP: text prompts, stop strings,
logprobs with token strings, streamed chunks aligned with their tokens (text, logprobs,
token_ids), chat (ChatML, enable_thinking, <|im_end|> as a stop), /tokenize and /detokenize,
and the README's curl command, run with curl.  On the demo model (byte-level tokenizer) and on
a small random checkpoint with the real Qwen3 tokenizer (vocab 151,669; written by
qwen3_random.py when numpy and safetensors are installed)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import SRC, Server, run, shared_dir  # noqa: E402

PASSKEY = "The passkey is 47123. " + "XXXXX. " * 40 + "The passkey is "
CHATML_OFF = ("<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
CHATML_ON = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


def chunks_of(events, idx=0):
    return [c for e in events for c in e["choices"] if c["index"] == idx]


# ------------------------------------------------------------------ demo model (byte tokenizer)

def test_readme_curl_recalls_passkey():
    """The curl line of docs/SERVER.md, run as written (port replaced).  (README.md's command
    blocks are run by tests/deploy/test_readme.py.)"""
    if not shutil.which("curl"):
        raise AssertionError("curl is not installed")
    s = Server()
    try:
        for doc in (os.path.join("docs", "SERVER.md"),):
            text = open(os.path.join(SRC, doc)).read()
            cmds = [ln for ln in text.splitlines() if ln.startswith("curl ") and "passkey" in ln]
            assert cmds, f"{doc} has no passkey curl command"
            for cmd in cmds:
                cmd = cmd.replace("localhost:8080", f"127.0.0.1:{s.port}")
                out = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60)
                r = json.loads(out.stdout)
                assert r["choices"][0]["text"] == "47123.", (doc, r)
                assert r["usage"]["prompt_tokens"] > 2000  # the key is far outside the window
    finally:
        assert s.stop() == 0


def test_demo_completions_text():
    s = Server()
    try:
        st, r = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 6, "temperature": 0,
                                            "logprobs": 2, "return_token_ids": True})
        assert st == 200, r
        c = r["choices"][0]
        assert c["text"] == "47123." and c["finish_reason"] == "length"
        lp = c["logprobs"]
        assert lp["tokens"] == list("47123."), lp["tokens"]  # token strings, not token_id:N
        assert lp["text_offset"] == [0, 1, 2, 3, 4, 5]
        assert all(len(t) == 2 for t in lp["top_logprobs"]) and "4" in lp["top_logprobs"][0]
        assert c["prompt_token_ids"] == list(PASSKEY.encode())
        # stop strings: the text ends before the first match; n > 1; a list and a string
        st, r = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 6, "temperature": 0,
                                            "stop": ["23", "7"], "n": 2})
        assert [c["text"] for c in r["choices"]] == ["4", "4"], r
        assert all(c["finish_reason"] == "stop" for c in r["choices"])
        st, r = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 6, "temperature": 0,
                                            "stop": "3."})
        assert r["choices"][0]["text"] == "4712" and r["choices"][0]["finish_reason"] == "stop"
        # echo puts the prompt text in front
        st, r = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 2, "temperature": 0,
                                            "echo": True})
        assert r["choices"][0]["text"] == PASSKEY + "47"
        # a token-id prompt still gets text
        st, r = s.post("/v1/completions", {"prompt": list(PASSKEY.encode()), "max_tokens": 3,
                                            "temperature": 0})
        assert r["choices"][0]["text"] == "471"
    finally:
        assert s.stop() == 0


def test_demo_stream_alignment():
    """Each chunk carries exactly the tokens whose text it carries: text held back for a
    possible stop string or an incomplete UTF-8 character travels with its tokens."""
    s = Server()
    try:
        # "2" may begin the stop string "29": held back, then released together with "3"
        st, ev, done = s.stream("/v1/completions", {
            "prompt": PASSKEY, "max_tokens": 6, "temperature": 0, "stream": True,
            "stop": ["29"], "logprobs": 1, "return_token_ids": True})
        assert st == 200 and done
        ch = chunks_of(ev)
        texts = [c["text"] for c in ch if c["text"]]
        assert texts == ["4", "7", "1", "23", "."], texts
        for c in ch:
            toks = c["logprobs"]["tokens"] if c["logprobs"] else []
            assert "".join(toks) == c["text"], c
            assert bytes(c["token_ids"]).decode() == c["text"], c
        assert ch[0]["prompt_token_ids"] == list(PASSKEY.encode())
        assert all("prompt_token_ids" not in c for c in ch[1:])
        offs = [o for c in ch if c["logprobs"] for o in c["logprobs"]["text_offset"]]
        assert offs == [0, 1, 2, 3, 4, 5], offs
        assert ch[-1]["finish_reason"] == "length"
        # a stop string inside held-back text: the last chunk has the tokens, not the text
        st, ev, done = s.stream("/v1/completions", {
            "prompt": PASSKEY, "max_tokens": 6, "temperature": 0, "stream": True,
            "stop": ["23"], "return_token_ids": True})
        ch = chunks_of(ev)
        assert "".join(c["text"] for c in ch) == "471"
        assert [t for c in ch for t in c["token_ids"]] == list(b"47123")
        assert ch[-1]["finish_reason"] == "stop" and ch[-1]["token_ids"] == list(b"23")
        # a two-byte character is two tokens and one chunk
        p = "The passkey is \u00e947. " + "XXXXX. " * 40 + "The passkey is "
        st, ev, done = s.stream("/v1/completions", {
            "prompt": p, "max_tokens": 5, "temperature": 0, "stream": True, "logprobs": 0,
            "return_token_ids": True})
        ch = chunks_of(ev)
        assert ch[0]["text"] == "\u00e9" and ch[0]["token_ids"] == [0xC3, 0xA9], ch[0]
        assert len(ch[0]["logprobs"]["tokens"]) == 2
        assert "".join(c["text"] for c in ch) == "\u00e947."
        # the same text and ids as without streaming
        st, r = s.post("/v1/completions", {"prompt": p, "max_tokens": 5, "temperature": 0,
                                            "return_token_ids": True})
        assert r["choices"][0]["token_ids"] == [t for c in ch for t in c["token_ids"]]
        # echo + logprobs streamed: the prompt's log-probabilities go out with the echoed text,
        # and the whole stream adds up to the non-streamed answer (also with max_tokens 0)
        for mt in (3, 0):
            body = {"prompt": "ab ab a", "max_tokens": mt, "temperature": 0, "echo": True,
                    "logprobs": 1}
            st, r = s.post("/v1/completions", body)
            want = r["choices"][0]
            st, ev, done = s.stream("/v1/completions", {**body, "stream": True,
                                                        "return_token_ids": True})
            ch = chunks_of(ev)
            assert "".join(c["text"] for c in ch) == want["text"], (mt, ch)
            for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
                got = [x for c in ch if c["logprobs"] for x in c["logprobs"][key]]
                assert got == want["logprobs"][key], (mt, key, got)
            assert [t for c in ch for t in c["token_ids"]] == list(want["text"][7:].encode())
    finally:
        assert s.stop() == 0


def test_demo_chat():
    s = Server()
    try:
        content = "A: assistant\nTHINK. B: </think>\n\nNOTHINK. "
        msgs = [{"role": "user", "content": content}]
        st, on = s.post("/v1/chat/completions", {
            "messages": msgs, "max_tokens": 7, "temperature": 0, "return_token_ids": True,
            "chat_template_kwargs": {"enable_thinking": True}, "logprobs": True,
            "top_logprobs": 1})
        assert st == 200, on
        c = on["choices"][0]
        # the generation prompt ends "assistant\n": the copy model continues as in the message
        assert c["message"] == {"role": "assistant", "content": "THINK. "}, c
        assert bytes(c["prompt_token_ids"]).decode() == CHATML_ON.format(content)
        assert [e["token"] for e in c["logprobs"]["content"]] == list("THINK. ")
        assert c["logprobs"]["content"][0]["bytes"] == [ord("T")]
        assert on["id"].startswith("chatcmpl-") and on["object"] == "chat.completion"
        st, off = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 1,
                                                   "return_token_ids": True})
        assert bytes(off["choices"][0]["prompt_token_ids"]).decode() == CHATML_OFF.format(content)
        assert off["usage"]["prompt_tokens"] == on["usage"]["prompt_tokens"] + 19
        # streamed: role first, the same content, finish and usage
        st, ev, done = s.stream("/v1/chat/completions", {
            "messages": msgs, "max_tokens": 7, "temperature": 0, "stream": True,
            "chat_template_kwargs": {"enable_thinking": True},
            "stream_options": {"include_usage": True}})
        ch = chunks_of(ev)
        assert ch[0]["delta"]["role"] == "assistant"
        assert "".join(c["delta"].get("content", "") for c in ch) == "THINK. "
        assert ch[-1]["finish_reason"] == "length" and ev[-1]["usage"]["completion_tokens"] == 7
        st, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 7,
                                                 "temperature": 0, "stop": ["K."],
                                                 "chat_template_kwargs": {"enable_thinking": True}})
        assert r["choices"][0]["message"]["content"] == "THIN"
        assert r["choices"][0]["finish_reason"] == "stop"
        for bad, param in (({"enable_thinking": "yes"}, "chat_template_kwargs.enable_thinking"),
                           ("x", "chat_template_kwargs")):
            st, r = s.post("/v1/chat/completions", {"messages": msgs,
                                                     "chat_template_kwargs": bad})
            assert st == 400 and r["error"]["param"] == param, r
        st, r = s.post("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
        assert st == 400 and "role" in r["error"]["message"], r
    finally:
        assert s.stop() == 0


def test_demo_tokenize():
    s = Server("--max-prompt-tokens", "64")
    try:
        st, r = s.post("/tokenize", {"prompt": "h\u00e9<|im_end|>"})
        assert st == 200 and r["tokens"] == list("h\u00e9<|im_end|>".encode()), r
        assert r["count"] == len(r["tokens"])
        st, r = s.post("/detokenize", {"tokens": [104, 0xC3, 0xA9]})
        assert st == 200 and r["prompt"] == "h\u00e9", r
        for path, body, param in (("/tokenize", {}, "prompt"),
                                  ("/tokenize", {"prompt": 5}, "prompt"),
                                  ("/tokenize", {"prompt": "x", "extra": 1}, "extra"),
                                  ("/tokenize", {"prompt": "x", "add_special_tokens": 2},
                                   "add_special_tokens"),
                                  ("/detokenize", {"tokens": [256]}, "tokens"),
                                  ("/detokenize", {"tokens": [-1]}, "tokens"),
                                  ("/detokenize", {"tokens": "abc"}, "tokens"),
                                  ("/detokenize", {"tokens": [1.5]}, "tokens"),
                                  ("/detokenize", {"tokens": [65] * 65}, "tokens")):
            st, r = s.post(path, body)
            assert st == 400 and r["error"]["param"] == param, (path, body, st, r)
        st, r = s.post("/tokenize", {"prompt": "x", "model": "gpt-4"})
        assert st == 404 and r["error"]["code"] == "model_not_found", r
        st, r = s.post("/detokenize", {"tokens": [120], "model": "rosa-copy-demo"})
        assert st == 200 and r["prompt"] == "x", r
        st, r = s.post("/tokenize", {"prompt": "x", "model": "m" * 129})
        assert st == 400 and r["error"]["param"] == "model", r
        st, r = s.post("/tokenize", b"{oops")
        assert st == 400 and "JSON" in r["error"]["message"]
    finally:
        assert s.stop() == 0


# ------------------------------------------------------------------ the real Qwen3 tokenizer

def qwen3_setup():
    sd = shared_dir()
    tok = sd and os.path.join(sd, "tokenizer", "qwen3", "tokenizer.json")
    if not tok or not os.path.exists(tok):
        return None
    try:
        import qwen3_random
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        return None
    d = tempfile.mkdtemp(prefix="rosa-q3-")
    qwen3_random.write(os.path.join(d, "qwen3-random"))
    return d, tok


HELLO, WORLD, IM_END, IM_START, THINK, THINK_END = 9707, 1879, 151645, 151644, 151667, 151668


def test_qwen3_tokenizer():
    setup = qwen3_setup()
    if not setup:
        print("  skip: no ../shared tokenizer or no numpy/safetensors")
        return
    d, tok = setup
    s = Server("--model", os.path.join(d, "qwen3-random"), "--tokenizer", tok)
    try:
        st, data = s.get("/v1/models")
        m = json.loads(data)["data"][0]
        assert m["vocab_size"] == 151669 and m["tokenizer"] is True
        st, r = s.post("/tokenize", {"prompt": "Hello world<|im_end|>"})
        assert r["tokens"] == [HELLO, WORLD, IM_END], r
        st, r = s.post("/tokenize", {"prompt": "Hello world<|im_end|>",
                                     "add_special_tokens": False})
        assert r["tokens"][:2] == [HELLO, WORLD] and IM_END not in r["tokens"], r
        st, r = s.post("/detokenize", {"tokens": [HELLO, WORLD, IM_END]})
        assert r["prompt"] == "Hello world<|im_end|>", r
        st, r = s.post("/detokenize", {"tokens": [HELLO, WORLD, IM_END],
                                       "skip_special_tokens": True})
        assert r["prompt"] == "Hello world", r
        st, r = s.post("/detokenize", {"tokens": [151669]})
        assert st == 400, r
        # text prompt; the bias makes " world" the answer every time: its string is " world"
        bias = {"logit_bias": {str(WORLD): 100}, "temperature": 0}
        st, r = s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 3, "logprobs": 1,
                                            "return_token_ids": True, **bias})
        c = r["choices"][0]
        assert c["text"] == " world world world" and c["token_ids"] == [WORLD] * 3, c
        assert c["prompt_token_ids"] == [HELLO]
        assert c["logprobs"]["tokens"] == [" world"] * 3
        assert c["logprobs"]["text_offset"] == [0, 6, 12]
        # a stop string across token boundaries, streamed and not
        body = {"prompt": "Hello", "max_tokens": 5, "stop": ["ld w"], **bias}
        st, r = s.post("/v1/completions", body)
        assert r["choices"][0]["text"] == " wor" and r["choices"][0]["finish_reason"] == "stop"
        st, ev, done = s.stream("/v1/completions", {**body, "stream": True, "logprobs": 0,
                                                    "return_token_ids": True})
        ch = chunks_of(ev)
        assert [(c["text"], c["token_ids"]) for c in ch] == [(" wor", [WORLD]), ("", [WORLD])], ch
        assert ch[-1]["finish_reason"] == "stop"
        # chat: ChatML with the real special tokens, <|im_end|> ends the turn
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        st, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 5,
                                                 "return_token_ids": True, **bias})
        c = r["choices"][0]
        assert c["message"]["content"] == " world" * 5 and c["finish_reason"] == "length", c
        st, text = s.post("/detokenize", {"tokens": c["prompt_token_ids"]})
        assert text["prompt"] == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                                  "Hello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert c["prompt_token_ids"][0] == IM_START and THINK in c["prompt_token_ids"]
        st, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 5,
                                                 "return_token_ids": True,
                                                 "chat_template_kwargs": {"enable_thinking": True},
                                                 **bias})
        assert THINK not in r["choices"][0]["prompt_token_ids"]
        assert r["choices"][0]["prompt_token_ids"][-3:] == [IM_START, 77091, 198]  # assistant\n
        im_end = {"logit_bias": {str(IM_END): 100, str(WORLD): 50}, "temperature": 0}
        st, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 5, **im_end})
        c = r["choices"][0]
        assert c["finish_reason"] == "stop" and c["message"]["content"] == "", r
        assert r["usage"]["completion_tokens"] == 0
        st, ev, done = s.stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 5,
                                                         "stream": True, **im_end})
        ch = chunks_of(ev)
        assert done and ch[-1]["finish_reason"] == "stop"
        assert "".join(c["delta"].get("content", "") for c in ch) == ""
        # completions stop at the model's eos (config.json: <|im_end|>) unless ignore_eos; special
        # tokens are not part of the text (vLLM's skip_special_tokens default)
        st, r = s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 2, **im_end})
        assert r["choices"][0]["finish_reason"] == "stop", r
        st, r = s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 2, "ignore_eos": True,
                                            "return_token_ids": True, **im_end})
        c = r["choices"][0]
        assert c["finish_reason"] == "length" and c["token_ids"] == [IM_END] * 2, r
        assert c["text"] == "", r
        # streamed chat logprobs carry the token strings with the chunk text
        st, ev, done = s.stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 3,
                                                         "stream": True, "logprobs": True,
                                                         "top_logprobs": 2, **bias})
        for c in chunks_of(ev):
            if c["delta"].get("content"):
                lp = c["logprobs"]["content"]
                assert "".join(e["token"] for e in lp) == c["delta"]["content"], c
                assert len(lp[0]["top_logprobs"]) == 2
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


def test_tokenizer_larger_than_model():
    """A golden model (vocab 512) with the Qwen3 tokenizer: text that encodes to larger ids is
    refused with 400, not fed to the engine."""
    sd = shared_dir()
    tok = sd and os.path.join(sd, "tokenizer", "qwen3", "tokenizer.json")
    if not tok or not os.path.exists(tok):
        print("  skip: no ../shared")
        return
    s = Server("--model", os.path.join(sd, "golden", "tiny-base-full", "model"),
               "--tokenizer", tok)
    try:
        st, r = s.post("/v1/completions", {"prompt": "Hello world", "max_tokens": 1})
        assert st == 400 and re.search(r"token id 9707 is out of range", r["error"]["message"]), r
        st, r = s.post("/v1/completions", {"prompt": "!", "max_tokens": 1})  # id 0 fits
        assert st == 200, r
        assert s.get("/health")[0] == 200
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_readme_curl_recalls_passkey, test_demo_completions_text, test_demo_stream_alignment,
         test_demo_chat, test_demo_tokenize, test_qwen3_tokenizer, test_tokenizer_larger_than_model])
