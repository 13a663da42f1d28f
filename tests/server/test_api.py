"""test_api.py: rosa-server over real HTTP on 127.0.0.1: endpoints, errors, limits, the demo
model's passkey recall, golden logits and greedy through the API (also via sessions fed in
pieces), disconnect cancellation, 64 concurrent streams, graceful shutdown."""
import json
import math
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run, shared_dir  # noqa: E402

PASSKEY = [ord(c) for c in "The passkey is 47123. " + "XXXXX. " * 300 + "The passkey is "]


def demo_server(*args):
    return Server("--max-batch", "64", *args)


def test_basic_endpoints():
    s = demo_server()
    try:
        st, data = s.get("/health")
        assert st == 200 and json.loads(data)["status"] == "ok"
        st, models = s.post("/v1/models", {})
        assert st == 405, st
        st, data = s.get("/v1/models")
        m = json.loads(data)["data"][0]
        assert m["id"] == "rosa-copy-demo" and m["attention_window"] == 2 and m["rosa"]["layers"] == 1
        st, data = s.get("/nope")
        assert st == 404 and "error" in json.loads(data)
        st, data = s.get("/metrics")
        assert st == 200 and b"rosa_requests_total" in data
        st, data = s.get("/v1/sessions")
        assert st == 200 and json.loads(data)["data"] == []
    finally:
        assert s.stop() == 0


def test_passkey_recall():
    s = demo_server()
    try:
        st, r = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 6, "temperature": 0,
                                            "return_token_ids": True})
        assert st == 200, r
        c = r["choices"][0]
        assert bytes(c["token_ids"][:5]) == b"47123", c["token_ids"]
        assert c["finish_reason"] == "length"
        assert r["usage"] == {"prompt_tokens": len(PASSKEY), "completion_tokens": 6,
                              "total_tokens": len(PASSKEY) + 6,
                              "prompt_tokens_details": {"cached_tokens": 0}}
    finally:
        assert s.stop() == 0


def test_errors():
    s = demo_server("--max-body-bytes", "4096")
    try:
        cases = [
            (b"{not json", 400), (b"[]", 400), ({"prompt": []}, 400),
            ({"prompt": [1], "max_tokens": -1}, 400), ({"prompt": [1], "n": 10**9}, 400),
            ({"prompt": [1], "logprobs": 21}, 400), ({"prompt": [99999]}, 400),
            ({"prompt": [1], "model": "gpt-4"}, 404), ({"prompt": [1], "suffix": "x"}, 400),
            ({"prompt": [1], "temperature": "hot"}, 400), ({"prompt": [1] * 3000}, 413),
        ]
        for body, want in cases:
            st, r = s.post("/v1/completions", body)
            assert st == want, (body if len(str(body)) < 100 else "big", st, r)
            e = r["error"]
            assert set(e) == {"message", "type", "param", "code"} and e["message"], r
        st, r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                 "tools": []})
        assert st == 400 and r["error"]["param"] == "tools"
        # a chunked upload over the limit
        c = s.conn()
        c.putrequest("POST", "/v1/completions")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for _ in range(10):
            c.send(b"400\r\n" + b" " * 1024 + b"\r\n")
        c.send(b"0\r\n\r\n")
        assert c.getresponse().status == 413
        c.close()
        # the server still serves
        st, r = s.post("/v1/completions", {"prompt": [1, 2], "max_tokens": 2})
        assert st == 200
    finally:
        assert s.stop() == 0


def test_api_key_and_queue_limit():
    s = demo_server("--api-key", "sekret", "--max-queue", "0")
    try:
        st, r = s.post("/v1/completions", {"prompt": [1]})
        assert st == 401 and r["error"]["type"] == "authentication_error"
        st, r = s.post("/v1/completions", {"prompt": [1]}, {"Authorization": "Bearer wrong"})
        assert st == 401
        st, data, h = s.request("POST", "/v1/completions", {"prompt": [1]},
                                {"Authorization": "Bearer sekret"})
        assert st == 429 and h.get("Retry-After") == "1", (st, data)
        assert s.get("/health")[0] == 200  # health needs no key
    finally:
        assert s.stop() == 0


def test_streaming_and_n():
    s = demo_server()
    try:
        st, ev, done = s.stream("/v1/completions", {
            "prompt": [[1, 2, 3], [4, 5]], "n": 2, "max_tokens": 4, "stream": True,
            "logprobs": 1, "stream_options": {"include_usage": True}, "temperature": 0.7,
            "seed": 5})
        assert st == 200 and done
        fins = [c for e in ev for c in e["choices"] if c["finish_reason"]]
        assert sorted(c["index"] for c in fins) == [0, 1, 2, 3], fins
        assert ev[-1]["choices"] == [] and ev[-1]["usage"]["completion_tokens"] == 16
        st, r = s.post("/v1/completions", {"prompt": [[1, 2, 3], [4, 5]], "n": 2, "max_tokens": 4,
                                            "seed": 5, "temperature": 0.7,
                                            "return_token_ids": True})
        assert st == 200 and len(r["choices"]) == 4
        st, r2 = s.post("/v1/completions", {"prompt": [[1, 2, 3], [4, 5]], "n": 2,
                                             "max_tokens": 4, "seed": 5, "temperature": 0.7,
                                             "return_token_ids": True})
        assert [c["token_ids"] for c in r["choices"]] == [c["token_ids"] for c in r2["choices"]]
    finally:
        assert s.stop() == 0


def test_n_prefills_once():
    """n > 1: the first choice of each prompt prefills it, the others fork its state
    (rosa_session_fork): the reuse counter grows by (n - 1) x the prompt per prompt, and the
    answers are those of n = 1.  Also with --max-batch 1, where the others wait for the first."""
    for args in (("--max-batch", "64"), ("--max-batch", "1")):
        s = Server(*args)
        try:
            st, one = s.post("/v1/completions", {"prompt": PASSKEY, "max_tokens": 6, "temperature": 0,
                                                  "return_token_ids": True})
            assert st == 200, one
            want = one["choices"][0]["token_ids"]
            assert bytes(want[:5]) == b"47123", want
            reused0 = s.metric("rosa_prompt_tokens_reused_total")
            st, r = s.post("/v1/completions", {"prompt": PASSKEY, "n": 3, "max_tokens": 6,
                                                "temperature": 0, "return_token_ids": True})
            assert st == 200 and len(r["choices"]) == 3, r
            assert all(c["token_ids"] == want for c in r["choices"]), r["choices"]
            assert s.metric("rosa_prompt_tokens_reused_total") - reused0 == 2 * len(PASSKEY), args
            # two prompts, n = 2, sampled with a seed: reproducible, one fork per prompt
            body = {"prompt": [PASSKEY[:200], PASSKEY[:150]], "n": 2, "max_tokens": 5, "seed": 3,
                    "temperature": 0.8, "return_token_ids": True}
            reused0 = s.metric("rosa_prompt_tokens_reused_total")
            st, a = s.post("/v1/completions", body)
            assert st == 200 and len(a["choices"]) == 4, a
            assert s.metric("rosa_prompt_tokens_reused_total") - reused0 == 350, args
            st, b = s.post("/v1/completions", body)
            assert [c["token_ids"] for c in a["choices"]] == [c["token_ids"] for c in b["choices"]]
            # echo + logprobs: every choice reports the prompt, so nothing is forked
            reused0 = s.metric("rosa_prompt_tokens_reused_total")
            st, e = s.post("/v1/completions", {"prompt": [1, 2, 3, 4], "n": 2, "max_tokens": 2,
                                                "echo": True, "logprobs": 0, "temperature": 0})
            assert st == 200 and len(e["choices"]) == 2, e
            assert s.metric("rosa_prompt_tokens_reused_total") == reused0
        finally:
            assert s.stop() == 0


def load_case(name):
    d = os.path.join(shared_dir(), "golden", name)
    case = json.load(open(os.path.join(d, "case.json")))
    raw = open(os.path.join(d, "logits.f32"), "rb").read()
    T, V = case["logits_shape"]
    rows = [struct.unpack_from("<%df" % V, raw, 4 * V * t) for t in range(T)]
    args = ["--model", os.path.join(d, "model")]
    ad = os.path.join(d, "adapter", "rosa_adapter.safetensors")
    if os.path.exists(ad):
        args += ["--adapter", ad]
    run_opts = case["run"]
    for k, flag in (("window", "--window"), ("global_layers", "--global-layers"),
                    ("bits_per_route", "--rosa-bits"), ("inject_mode", "--rosa-mode")):
        if run_opts.get(k) is not None and not (k == "global_layers" and run_opts.get("window") is None):
            args += [flag, str(run_opts[k])]
    return case, rows, args


def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def check_golden(name):
    case, rows, args = load_case(name)
    s = Server(*args, "--prefill-chunk", "37")
    try:
        prompt, greedy = case["prompt"], case["greedy"]
        st, r = s.post("/v1/completions", {"prompt": prompt, "echo": True, "logprobs": 1,
                                            "max_tokens": 0})
        assert st == 200, r
        lp = r["choices"][0]["logprobs"]["token_logprobs"]
        assert lp[0] is None and len(lp) == len(prompt)
        worst = max(abs(lp[t + 1] - log_softmax(rows[t])[prompt[t + 1]]) for t in range(len(prompt) - 1))
        assert worst < 1e-3, f"{name}: logprob error {worst}"
        body = {"prompt": prompt, "max_tokens": len(greedy), "temperature": 0,
                "return_token_ids": True, "ignore_eos": True}
        st, r = s.post("/v1/completions", body)
        assert r["choices"][0]["token_ids"] == greedy, (name, r["choices"][0]["token_ids"], greedy)
        # the same through a session fed in pieces, a divergence, and the way back
        sid = {"session_id": "golden-" + name}
        reused0 = s.metric("rosa_prompt_tokens_reused_total")
        for cut in (17, 50, len(prompt) - 5):
            st, r = s.post("/v1/completions", {"prompt": prompt[:cut], "max_tokens": 0, **sid})
            assert st == 200, r
        st, r = s.post("/v1/completions", {**body, **sid})
        assert r["choices"][0]["token_ids"] == greedy, (name, "session")
        # each piece extended the previous one: only the new suffix was computed
        reused = s.metric("rosa_prompt_tokens_reused_total") - reused0
        assert reused == 17 + 50 + len(prompt) - 5, (name, reused)
        diverged = prompt[:30] + [(prompt[30] + 1) % 256] + prompt[31:60]
        st, r = s.post("/v1/completions", {"prompt": diverged, "max_tokens": 1, **sid})
        assert st == 200
        st, r = s.post("/v1/completions", {**body, **sid})
        assert r["choices"][0]["token_ids"] == greedy, (name, "after divergence")
        # continuing from prompt + generated reuses the session
        st, r = s.post("/v1/completions", {"prompt": prompt + greedy[:-1], "max_tokens": 1,
                                            "temperature": 0, "return_token_ids": True, **sid})
        assert r["choices"][0]["token_ids"] == greedy[-1:], (name, "extension")
        assert s.metric("rosa_prompt_tokens_reused_total") > 0
        st, data = s.get("/v1/sessions")
        assert json.loads(data)["data"][0]["id"] == "golden-" + name
        st, _, _ = s.request("DELETE", "/v1/sessions/golden-" + name)
        assert st == 200
        st, _, _ = s.request("DELETE", "/v1/sessions/golden-" + name)
        assert st == 404
    finally:
        assert s.stop() == 0


def test_golden_through_api():
    if not shared_dir():
        print("skip: no ../shared")
        return
    for name in sorted(os.listdir(os.path.join(shared_dir(), "golden"))):
        check_golden(name)


def test_disconnect_cancels():
    s = demo_server()
    try:
        base_kv = s.metric("rosa_kv_bytes")
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        body = json.dumps({"prompt": [1, 2, 3], "max_tokens": 30000, "stream": True,
                           "ignore_eos": True}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while b"data:" not in got:
            got += sock.recv(4096)
        sock.close()
        deadline = time.time() + 5
        while time.time() < deadline and (s.metric("rosa_running_requests") != 0 or
                                          s.metric("rosa_cancellations_total") < 1):
            time.sleep(0.02)
        assert s.metric("rosa_running_requests") == 0
        assert s.metric("rosa_cancellations_total") >= 1
        assert s.metric("rosa_kv_bytes") == base_kv
    finally:
        assert s.stop() == 0


def test_64_streams_with_disconnects():
    s = demo_server()
    results, errors = {}, []

    def client(i):
        try:
            body = {"prompt": PASSKEY[:60 + i], "max_tokens": 40, "stream": True,
                    "ignore_eos": True, "temperature": 0.5, "seed": i}
            if i % 8 == 7:  # leave mid-stream
                sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
                data = json.dumps({**body, "max_tokens": 5000}).encode()
                sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                             b"\r\nContent-Type: application/json\r\n\r\n" % len(data) + data)
                sock.recv(100)
                sock.close()
                results[i] = "left"
                return
            st, ev, done = s.stream("/v1/completions", body)
            assert st == 200 and done
            fin = [c["finish_reason"] for e in ev for c in e["choices"] if c["finish_reason"]]
            assert fin == ["length"], fin
            results[i] = "ok"
        except Exception as e:  # collected and reported below
            errors.append((i, repr(e)))

    try:
        ts = [threading.Thread(target=client, args=(i,)) for i in range(64)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors, errors[:3]
        assert len(results) == 64
        deadline = time.time() + 10
        while time.time() < deadline and s.metric("rosa_running_requests") != 0:
            time.sleep(0.05)
        assert s.metric("rosa_running_requests") == 0
        assert s.metric("rosa_kv_bytes") == 0 and s.metric("rosa_queue_depth") == 0
        assert s.get("/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_idle_connections_and_slowloris():
    s = demo_server("--idle-timeout", "1")
    try:
        idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(200)]
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        st, r = s.post("/v1/completions", {"prompt": [1, 2], "max_tokens": 3})
        assert st == 200
        time.sleep(2.5)
        assert slow.recv(100) == b""  # closed by the idle timeout
        for c in idle:
            c.close()
        assert s.get("/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_sigterm_drains_streams():
    s = demo_server("--shutdown-grace", "5")
    out = {}

    def client():
        out["r"] = s.stream("/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 300,
                                                 "stream": True, "ignore_eos": True})

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.2)
    rc = s.stop()
    t.join(30)
    assert rc == 0
    st, ev, done = out["r"]
    assert st == 200 and done, "stream was not finished during the grace period"


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_basic_endpoints, test_passkey_recall, test_errors, test_api_key_and_queue_limit,
         test_streaming_and_n, test_n_prefills_once, test_golden_through_api, test_disconnect_cancels,
         test_64_streams_with_disconnects, test_idle_connections_and_slowloris,
         test_sigterm_drains_streams])
