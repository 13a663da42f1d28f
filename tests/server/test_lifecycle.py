"""test_lifecycle.py: how requests end when the server ends them: the shutdown grace period
running out (streams get an error event and [DONE], never a cut connection), --request-timeout,
and the --max-session-bytes budget (413 for a request that outgrows it, LRU eviction of kept
sessions, visible in /v1/sessions and /metrics).  Real rosa-server on 127.0.0.1, demo model."""
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run, shared_dir  # noqa: E402


def ids(n, seed):
    r = random.Random(seed)
    return [r.randrange(32, 127) for _ in range(n)]


LONG = {"prompt": [1, 2, 3], "max_tokens": 30000, "ignore_eos": True}


def check_error_then_done(ev, done, status, words):
    """A stream the server ended: some tokens, then one error event, then [DONE]."""
    assert done, "no data: [DONE]"
    assert "error" in ev[-1], ev[-1]
    err = ev[-1]["error"]
    assert set(err) == {"message", "type", "param", "code"} and words in err["message"], err
    assert all("error" not in e for e in ev[:-1])
    assert any(c["text"] or c.get("token_ids") for e in ev[:-1] for c in e["choices"]), \
        "no tokens before the error"


def test_shutdown_grace_ends_streams():
    s = Server("--shutdown-grace", "0.5", "--max-batch", "2")
    out = {}

    def streamer(k):
        out[k] = s.stream("/v1/completions", {**LONG, "stream": True, "return_token_ids": True})

    def plain():
        out["plain"] = s.post("/v1/completions", LONG)

    ts = [threading.Thread(target=streamer, args=(k,)) for k in ("a", "b", "queued")]
    # (--max-batch 2: two of the four requests run, two wait in the queue)
    ts.append(threading.Thread(target=plain))
    try:
        for t in ts:
            t.start()
        deadline = time.time() + 10
        while time.time() < deadline and (s.metric("rosa_generation_tokens_total") or 0) < 100:
            time.sleep(0.02)
        t0 = time.time()
        rc = s.stop()
        took = time.time() - t0
        for t in ts:
            t.join(30)
        assert rc == 0 and took < 5, (rc, took)
        # two requests ran (tokens, then the error), the others waited for a batch slot (the
        # error only); every stream ends with the error event and [DONE]
        with_tokens = 0
        for k in ("a", "b", "queued"):
            st, ev, done = out[k]
            assert st == 200 and done and "shutting down" in ev[-1]["error"]["message"], ev[-2:]
            if len(ev) > 1:
                check_error_then_done(ev, done, 503, "shutting down")
                with_tokens += 1
        assert with_tokens >= 1
        st, r = out["plain"]
        assert st == 503 and "shutting down" in r["error"]["message"], (st, r)
    finally:
        if s.proc.poll() is None:
            s.stop()


def test_request_timeout():
    s = Server("--request-timeout", "0.6")
    try:
        t0 = time.time()
        st, ev, done = s.stream("/v1/completions", {**LONG, "stream": True})
        took = time.time() - t0
        assert st == 200 and 0.5 < took < 5, took
        check_error_then_done(ev, done, 503, "timed out")
        t0 = time.time()
        st, r = s.post("/v1/completions", LONG)
        assert st == 503 and "timed out" in r["error"]["message"], (st, r)
        assert time.time() - t0 < 5
        # short requests are untouched
        st, r = s.post("/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 20})
        assert st == 200 and r["choices"][0]["finish_reason"] in ("length", "stop")
        assert s.metric("rosa_running_requests") == 0
    finally:
        assert s.stop() == 0


def raw_post(s, body):
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    return sock


def wait_for(cond, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        time.sleep(0.02)
    return cond()


def test_queued_requests_end_while_the_batch_is_full():
    """A queued request whose client leaves ends at once, not when a batch slot frees."""
    s = Server("--max-batch", "1")
    try:
        running = raw_post(s, {**LONG, "max_tokens": 32000, "stream": True})
        assert running.recv(4096)  # it streams (32000 tokens: seconds)
        queued = raw_post(s, {**LONG, "stream": True})
        assert wait_for(lambda: s.metric("rosa_queue_depth") == 1), s.metric("rosa_queue_depth")
        queued.close()
        assert wait_for(lambda: s.metric("rosa_queue_depth") == 0 and
                        s.metric("rosa_cancellations_total") >= 1), "queued request not dropped"
        assert s.metric("rosa_running_requests") == 1
        running.close()
        assert wait_for(lambda: s.metric("rosa_running_requests") == 0)
    finally:
        assert s.stop() == 0
    # a request that spends its time in the queue still gets the timeout's 503 (with one global
    # timeout the running one always ends first, so this cannot show that it ends early)
    s = Server("--max-batch", "1", "--request-timeout", "1.5")
    try:
        running = raw_post(s, {**LONG, "max_tokens": 32000, "stream": True})
        assert running.recv(4096)
        time.sleep(0.5)
        t0 = time.time()
        st, r = s.post("/v1/completions", LONG)
        assert st == 503 and "timed out" in r["error"]["message"], (st, r)
        assert 1.0 < time.time() - t0 < 3, time.time() - t0
        running.close()
    finally:
        assert s.stop() == 0


def session_bytes(s, sid):
    st, data = s.get("/v1/sessions")
    return {e["id"]: e for e in json.loads(data)["data"]}.get(sid)


def test_session_budget_and_lru():
    # the size of one 400-token session, measured with the default (large) budget
    s = Server()
    try:
        st, r = s.post("/v1/completions", {"prompt": ids(400, 1), "max_tokens": 0,
                                            "session_id": "probe"})
        assert st == 200, r
        b = session_bytes(s, "probe")
        assert b["tokens"] == 400, b
        one = b["bytes"]
    finally:
        assert s.stop() == 0
    budget = int(one * 1.5)
    s = Server("--max-session-bytes", str(budget))
    try:
        for sid, seed in (("older", 2), ("newer", 3)):
            st, r = s.post("/v1/completions", {"prompt": ids(400, seed), "max_tokens": 1,
                                                "session_id": sid})
            assert st == 200, r
        # two sessions do not fit: the least recently used one went
        assert session_bytes(s, "older") is None
        assert session_bytes(s, "newer")["tokens"] == 400  # the sampled token is not fed yet
        assert s.metric("rosa_session_evictions_total") == 1
        assert s.metric("rosa_sessions") == 1
        assert 0 < s.metric("rosa_session_bytes") <= budget
        # running state and kept sessions share the budget: a request that needs the room
        # (0.75 of a kept session + the kept one > 1.5) evicts the idle session, and succeeds
        st, r = s.post("/v1/completions", {"prompt": ids(300, 6), "max_tokens": 5})
        assert st == 200, r
        assert session_bytes(s, "newer") is None
        assert s.metric("rosa_session_evictions_total") == 2 and s.metric("rosa_sessions") == 0
        # a request that needs more than the whole budget: 413, with or without a session
        big = ids(2000, 4)
        for extra in ({"session_id": "big"}, {}):
            st, r = s.post("/v1/completions", {"prompt": big, "max_tokens": 1, **extra})
            assert st == 413 and "--max-session-bytes" in r["error"]["message"], (st, r)
        st, ev, done = s.stream("/v1/completions", {"prompt": big, "max_tokens": 1,
                                                    "stream": True})
        assert st == 200 and done and ev[-1]["error"]["message"].find("max-session-bytes") > 0
        # ... and so does one that grows past it while generating (sampled at a high temperature
        # so that the text keeps changing: ROSA state grows with each new run of symbols)
        st, r = s.post("/v1/completions", {"prompt": ids(100, 5), "max_tokens": 3000,
                                            "ignore_eos": True, "temperature": 5, "seed": 1})
        assert st == 413, (st, str(r)[:300])
        assert session_bytes(s, "big") is None or session_bytes(s, "big")["tokens"] == 0
        assert s.metric("rosa_running_requests") == 0 and s.metric("rosa_kv_bytes") == 0
        st, r = s.post("/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 2})
        assert st == 200
    finally:
        assert s.stop() == 0


def test_running_requests_share_the_budget():
    """Running sequences together may not exceed --max-session-bytes: when they would, the most
    recently admitted one ends with 429 (Retry-After), the older one goes on."""
    s = Server()
    try:
        st, r = s.post("/v1/completions", {"prompt": ids(500, 7), "max_tokens": 0,
                                            "session_id": "probe"})
        one = session_bytes(s, "probe")["bytes"]
    finally:
        assert s.stop() == 0
    s = Server("--max-session-bytes", str(int(one * 1.5)))
    try:
        # greedy on the demo repeats one byte, so this one's state stays about `one` for seconds
        older = raw_post(s, {"prompt": ids(500, 7), "max_tokens": 30000, "ignore_eos": True,
                             "stream": True})
        assert older.recv(4096)
        st, data, h = s.request("POST", "/v1/completions", {"prompt": ids(500, 8),
                                                             "max_tokens": 5})
        r = json.loads(data)
        assert st == 429 and h.get("Retry-After") and "retry later" in r["error"]["message"], r
        assert s.metric("rosa_running_requests") == 1  # the older one still runs
        assert s.metric("rosa_kv_bytes") + s.metric("rosa_rosa_bytes") <= one * 1.5
        older.close()
        assert wait_for(lambda: s.metric("rosa_running_requests") == 0)
        st, r = s.post("/v1/completions", {"prompt": ids(500, 8), "max_tokens": 5})
        assert st == 200, r
    finally:
        assert s.stop() == 0


def test_session_budget_checked_before_admission():
    """With global-attention layers the cache of prompt + max_tokens is known in advance: a
    request that cannot fit is refused with a real 413 before streaming starts."""
    sd = shared_dir()
    if not sd:
        print("  skip: no ../shared")
        return
    model = os.path.join(sd, "golden", "tiny-base-full", "model")
    s = Server("--model", model, "--max-session-bytes", "200000")
    try:
        st, data, _ = s.request("POST", "/v1/completions",
                                {"prompt": [5] * 10, "max_tokens": 500, "stream": True})
        r = json.loads(data)
        assert st == 413 and r["error"]["param"] == "max_tokens", (st, r)
        st, r = s.post("/v1/completions", {"prompt": [5] * 10, "max_tokens": 20})
        assert st == 200, r
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_shutdown_grace_ends_streams, test_request_timeout,
         test_queued_requests_end_while_the_batch_is_full, test_session_budget_and_lru,
         test_running_requests_share_the_budget, test_session_budget_checked_before_admission])
