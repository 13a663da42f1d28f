"""test_clients.py: rosa-cli chat against a real rosa-server (streaming, history, /reset,
Ctrl-C), and rosa-cli perplexity on the demo model (three modes, scoring checked against logits
from `rosa-cli logits`, token ids and text input).  Chat needs the server's tokenizer: where the
build has none the test checks the error path instead, and says so."""
import fcntl
import json
import math
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SRC, Server, run  # noqa: E402

CLI = os.environ.get("ROSA_CLI", os.path.join(SRC, "build", "clients", "rosa-cli"))


class Chat:
    """rosa-cli chat with pipes; reads stdout without blocking."""

    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "chat", *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for f in (self.p.stdout, self.p.stderr):
            fcntl.fcntl(f, fcntl.F_SETFL, fcntl.fcntl(f, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.out, self.err = b"", b""

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def pump(self, timeout=0.05):
        r, _, _ = select.select([self.p.stdout, self.p.stderr], [], [], timeout)
        for f in r:
            data = f.read() or b""
            if f is self.p.stdout:
                self.out += data
            else:
                self.err += data

    def wait_for(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.pump()
            if pred():
                return
        raise AssertionError(f"timed out; stdout={self.out[-400:]!r} stderr={self.err[-400:]!r}")

    def close(self, timeout=20):
        self.p.stdin.close()
        rc = self.p.wait(timeout)
        self.pump(0)
        return rc


def has_tokenizer(s):
    st, data = s.get("/v1/models")
    return json.loads(data)["data"][0].get("tokenizer") is True


def session_tokens(s, sid):
    st, data = s.get("/v1/sessions")
    for d in json.loads(data)["data"]:
        if d["id"] == sid and not d["busy"]:
            return d["tokens"]
    return None


def chat_usage(s, messages, max_tokens):
    st, r = s.post("/v1/chat/completions", {"messages": messages, "max_tokens": max_tokens,
                                             "temperature": 0})
    assert st == 200, r
    return r["choices"][0]["message"]["content"], r["usage"]["prompt_tokens"]


def test_chat_streams_keeps_history_and_resets():
    # the kept token counts below are those of the turns as sent; the server's preparation of
    # the next turn (tests/server/test_chat_prepare.py) would change them while idle
    s = Server("--no-chat-prepare")
    try:
        url = f"http://127.0.0.1:{s.port}"
        if not has_tokenizer(s):
            c = Chat("--url", url, "--session", "c1", "--max-tokens", "4")
            c.send("hello")
            c.wait_for(lambda: b"[error 400" in c.err)
            assert b"tokenizer" in c.err, c.err
            c.send("again")  # still alive, still answering
            c.wait_for(lambda: c.err.count(b"[error 400") == 2)
            assert c.close() == 0
            print("NOTE: this build has no tokenizer; chat checked on its error path only")
            return
        c = Chat("--url", url, "--session", "c1", "--max-tokens", "6", "--temperature", "0")
        u1, u2 = "The passkey is 47123.", "And the second line."
        a1, p1 = chat_usage(s, [{"role": "user", "content": u1}], 6)
        c.send(u1)
        c.wait_for(lambda: c.out == (a1 + "\n").encode())
        c.wait_for(lambda: session_tokens(s, "c1") is not None)
        t1 = session_tokens(s, "c1")
        assert t1 == p1 + 6 - 1, (t1, p1)
        msgs = [{"role": "user", "content": u1}, {"role": "assistant", "content": a1},
                {"role": "user", "content": u2}]
        a2, p2 = chat_usage(s, msgs, 6)
        c.send(u2)
        c.wait_for(lambda: c.out == (a1 + "\n" + a2 + "\n").encode())
        c.wait_for(lambda: session_tokens(s, "c1") == p2 + 6 - 1)  # the history was sent
        c.send("/reset")
        c.send(u1)
        c.wait_for(lambda: c.out.endswith(("[history cleared]\n" + a1 + "\n").encode()))
        c.wait_for(lambda: session_tokens(s, "c1") == t1)  # a fresh conversation again
        assert c.close() == 0 and not c.err, c.err
    finally:
        assert s.stop() == 0


def catches_sigint(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


def test_chat_ctrl_c_stops_the_answer_not_the_program():
    s = Server("--max-tokens", "32768")
    try:
        url = f"http://127.0.0.1:{s.port}"
        c = Chat("--url", url)
        # Ctrl-C at the prompt: a hint, the program goes on.  Wait until rosa-cli has installed
        # its SIGINT handler (SigCgt in /proc), so the signal cannot arrive before it.
        deadline = time.time() + 20
        while time.time() < deadline and not catches_sigint(c.p.pid):
            time.sleep(0.02)
        time.sleep(0.05)  # from the handler to the blocking read
        c.p.send_signal(signal.SIGINT)
        c.wait_for(lambda: b"/quit leaves" in c.out)
        assert c.p.poll() is None
        if has_tokenizer(s):
            cancelled = s.metric("rosa_cancellations_total")
            c.send("Tell me a long story.")  # 32768 tokens: seconds of streaming
            c.wait_for(lambda: len(c.out) > 40)
            c.p.send_signal(signal.SIGINT)
            c.wait_for(lambda: b"[interrupted]" in c.out, timeout=5)
            assert c.p.poll() is None
            # the server noticed the hang-up and cancelled the sequence
            deadline = time.time() + 10
            while time.time() < deadline and s.metric("rosa_cancellations_total") == cancelled:
                time.sleep(0.05)
            assert s.metric("rosa_cancellations_total") > cancelled
            assert s.metric("rosa_running_requests") == 0
        else:
            print("NOTE: this build has no tokenizer; Ctrl-C checked at the prompt only")
        c.send("/quit")
        assert c.p.wait(10) == 0
    finally:
        assert s.stop() == 0


def test_chat_bad_server_is_reported():
    c = Chat("--url", "http://127.0.0.1:1")
    c.send("anyone?")
    c.wait_for(lambda: b"[error: http://127.0.0.1:1" in c.err)
    assert c.close() == 0


# ---------------------------------------------------------------- perplexity

def demo_dir():
    """The built-in demo model, as a server writes it."""
    s = Server()
    s.stop()
    d = os.path.join(s.cache, "demo")
    return os.path.join(d, "model"), os.path.join(d, "adapter", "rosa_adapter.safetensors")


def repeated_text():
    words = ["alpha", "bravo", "delta", "echo", "kilo", "lima", "oscar", "tango", "zulu"]
    import random
    rng = random.Random(7)
    block = " ".join(rng.choice(words) for _ in range(40)) + ". "
    return (block * 8).encode()


def parse_table(out):
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] in ("window", "rosa", "global"):
            rows[f[0]] = {"window": f[1], "ppl": float(f[2]), "tps": float(f[3]),
                          "scored": int(f[4]), "rosa_layers": int(f[5]), "kv": int(f[6]),
                          "rosa_per_tok": float(f[7])}
    return rows


def test_perplexity_modes_and_scoring():
    model, adapter = demo_dir()
    tmp = tempfile.mkdtemp(prefix="rosa-ppl-")
    text = repeated_text()
    ids_path = os.path.join(tmp, "ids.json")
    json.dump(list(text), open(ids_path, "w"))
    ctx = 600  # crosses the 256-token feeding chunks
    p = subprocess.run([CLI, "perplexity", "--model", model, "--adapter", adapter, "--ids",
                        ids_path, "--ctx", str(ctx), "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = parse_table(p.stdout)
    assert set(rows) == {"window", "rosa", "global"}, p.stdout
    nseq = len(text) // ctx
    for r in rows.values():
        assert r["scored"] == nseq * (ctx - 1), (r, nseq)
    # the copy model predicts the repeats only through ROSA
    assert rows["rosa"]["ppl"] * 1000 < rows["window"]["ppl"], p.stdout
    assert rows["rosa"]["rosa_layers"] == 1 and rows["window"]["rosa_layers"] == 0
    assert rows["rosa"]["rosa_per_tok"] > 0 and rows["window"]["rosa_per_tok"] == 0
    assert rows["global"]["window"] == "global" and rows["window"]["window"] == "2"
    assert rows["global"]["kv"] > 10 * rows["window"]["kv"]  # the cache grows with the text

    # the rosa row's PPL from the logits of `rosa-cli logits`, computed here
    nll, n = 0.0, 0
    for k in range(nseq):
        seq = list(text[k * ctx:(k + 1) * ctx])
        json.dump(seq, open(os.path.join(tmp, "seq.json"), "w"))
        out = os.path.join(tmp, "logits.f32")
        q = subprocess.run([CLI, "logits", "--model", model, "--adapter", adapter, "--prompt-ids",
                            os.path.join(tmp, "seq.json"), "--out", out, "--threads", "1"],
                           capture_output=True, text=True, timeout=300)
        assert q.returncode == 0, q.stderr
        raw = open(out, "rb").read()
        V = len(raw) // 4 // ctx
        vals = struct.unpack(f"{ctx * V}f", raw)
        for t in range(ctx - 1):
            row = vals[t * V:(t + 1) * V]
            m = max(row)
            nll += m + math.log(sum(math.exp(x - m) for x in row)) - row[seq[t + 1]]
            n += 1
    want = math.exp(nll / n)
    assert abs(rows["rosa"]["ppl"] - want) <= 1e-3 * want, (rows["rosa"]["ppl"], want)

    # text input: the same numbers as the ids when the build has a tokenizer (byte-level demo)
    txt = os.path.join(tmp, "text.txt")
    open(txt, "wb").write(text)
    q = subprocess.run([CLI, "perplexity", "--model", model, "--adapter", adapter, "--file", txt,
                        "--ctx", str(ctx), "--threads", "1", "--modes", "rosa"],
                       capture_output=True, text=True, timeout=300)
    if q.returncode == 0:
        assert parse_table(q.stdout)["rosa"]["ppl"] == rows["rosa"]["ppl"], q.stdout
    else:
        assert "no tokenizer" in q.stderr and "--ids" in q.stderr, q.stderr
        print("NOTE: this build has no tokenizer; --file checked on its error path only")
    # bad input is refused with a message, not a crash
    q = subprocess.run([CLI, "perplexity", "--model", model, "--ids", ids_path, "--modes", "nope"],
                       capture_output=True, text=True, timeout=60)
    assert q.returncode == 2 and "nope" in q.stderr


if __name__ == "__main__":
    run([test_chat_streams_keeps_history_and_resets,
         test_chat_ctrl_c_stops_the_answer_not_the_program, test_chat_bad_server_is_reported,
         test_perplexity_modes_and_scoring])
