"""test_availability.py: unauthenticated clients must not take the server away from others
(issue 14, items 1-5): idle connections at --max-connections, bodies sent without a key,
thousands of sessions, clients that do not read, slow clients.  Real rosa-server on 127.0.0.1,
demo model; every socket has a timeout and every wait a deadline."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run  # noqa: E402


def raw(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        s.sendall(data)
    return s


def read_head(sock, deadline=5.0):
    """Bytes up to the end of the response head (or what came before the peer closed)."""
    sock.settimeout(deadline)
    got = b""
    while b"\r\n\r\n" not in got:
        d = sock.recv(4096)
        if not d:
            break
        got += d
    return got


def closed_within(sock, seconds):
    """True when the server closes (or resets) the connection within `seconds`."""
    end = time.time() + seconds
    sock.settimeout(0.2)
    while time.time() < end:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_accepts_after_idle_connections_at_the_limit():
    """Item 1: --max-connections idle clients closed by --idle-timeout must not leave the
    listening socket out of the loop for good."""
    s = Server("--max-connections", "4", "--idle-timeout", "1")
    try:
        for rnd in range(2):
            idle = [raw(s.port, None) for _ in range(4)]
            for c in idle:  # all closed by the idle timeout
                assert closed_within(c, 5), "idle connection not closed"
                c.close()
            t0 = time.time()
            st, data, _ = s.request("GET", "/health", timeout=5)
            assert st == 200 and time.time() - t0 < 2, (rnd, st, time.time() - t0)
        st, r = s.post("/v1/completions", {"prompt": [65, 66], "max_tokens": 2})
        assert st == 200, r
    finally:
        assert s.stop() == 0


def test_refused_from_the_headers():
    """Item 2: without the API key (or on a route that takes no body) the answer comes from the
    headers alone: no `100 Continue`, no body read, nothing buffered."""
    s = Server("--api-key", "k3y")
    big = 8 << 20
    try:
        cases = [
            (b"POST /v1/completions", b"Expect: 100-continue\r\n", b"401"),
            (b"POST /v1/chat/completions", b"Authorization: Bearer wrong\r\n", b"401"),
            (b"POST /tokenize", b"", b"401"),
            (b"POST /health", b"", b"405"),
            (b"POST /nowhere", b"Authorization: Bearer k3y\r\n", b"404"),
            (b"PUT /v1/completions", b"Authorization: Bearer k3y\r\n", b"405"),
        ]
        for line, extra, want in cases:
            c = raw(s.port, line + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n" % big + extra + b"\r\n")
            head = read_head(c, 5)  # no body sent: a server waiting for it would time out
            c.close()
            assert head.startswith(b"HTTP/1.1 " + want), (line, head[:80])
        # the key is still honoured, and a key-holder's body is read as before
        st, r = s.post("/v1/completions", {"prompt": [65], "max_tokens": 1},
                       {"Authorization": "Bearer k3y"})
        assert st == 200, r
        # bodies sent anyway by clients without the key cost no memory
        before = rss_kib(s.proc.pid)
        chunk = b"x" * (1 << 20)

        def pusher():
            try:
                c = raw(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: %d\r\n\r\n" % big, timeout=10)
                for _ in range(8):
                    c.sendall(chunk)
                c.close()
            except OSError:
                pass  # refused early: the server closed while we were still sending

        ts = [threading.Thread(target=pusher) for _ in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        grew = rss_kib(s.proc.pid) - before
        assert grew < 16 * 1024, f"the server grew by {grew} KiB buffering refused bodies"
    finally:
        assert s.stop() == 0


def test_session_count_evicts_lru():
    """Item 3: at --max-sessions a new session_id evicts the least recently used idle session
    instead of being refused with 429 until --session-ttl."""
    s = Server("--max-sessions", "16")
    try:
        def use(sid, hdr=False):
            body = {"prompt": [65, 66, 67], "max_tokens": 1}
            if hdr:
                return s.post("/v1/completions", body, {"X-Session-Id": sid})
            return s.post("/v1/completions", {**body, "session_id": sid})

        for i in range(60):  # many tiny sessions, some by header
            st, r = use(f"tiny-{i}", hdr=i % 2 == 1)
            assert st == 200, (i, st, r)
        st, r = use("tiny-44")  # touch an old one: it must survive the next evictions
        assert st == 200
        for i in range(60, 75):
            st, r = use(f"tiny-{i}")
            assert st == 200, (i, st, r)
        st, data, _ = s.request("GET", "/v1/sessions")
        ids = {e["id"] for e in json.loads(data)["data"]}
        assert len(ids) == 16, sorted(ids)
        assert ids == {f"tiny-{i}" for i in range(60, 75)} | {"tiny-44"}, sorted(ids)
        assert s.metric("rosa_sessions") == 16
        assert s.metric("rosa_session_evictions_total") == 75 - 16
    finally:
        assert s.stop() == 0


def sse_events(payload):
    """Events of a chunked SSE body: (parsed JSON events, saw [DONE])."""
    out, done = [], False
    text = b""
    while payload:
        size, rest = payload.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            break
        text += rest[:n]
        payload = rest[n + 2:]
    for block in text.decode().split("\n\n"):
        if block.startswith("data: [DONE]"):
            done = True
        elif block.startswith("data: "):
            out.append(json.loads(block[6:]))
    return out, done


def test_response_size_limit():
    """Item 4: --max-response-bytes bounds what one request can make the server produce: refused
    up front when the echo alone is over it, ended with 413 (or an in-band error) when the
    generated output reaches it."""
    s = Server("--max-response-bytes", "100000")
    try:
        long_prompt = [65 + i % 26 for i in range(2000)]
        st, r = s.post("/v1/completions", {"prompt": long_prompt, "echo": True, "logprobs": 20,
                                           "max_tokens": 0})
        assert st == 413 and "--max-response-bytes" in r["error"]["message"], (st, r)
        st, r = s.post("/v1/completions", {"prompt": [65, 66], "max_tokens": 5000,
                                           "ignore_eos": True, "logprobs": 5})
        assert st == 413 and "--max-response-bytes" in r["error"]["message"], (st, r)
        c = raw(s.port, None, timeout=30)
        body = json.dumps({"prompt": [65, 66], "max_tokens": 5000, "ignore_eos": True,
                           "logprobs": 5, "stream": True}).encode()
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(body) + body)
        data = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
        c.close()
        head, payload = data.split(b"\r\n\r\n", 1)
        ev, done = sse_events(payload)
        assert done and "--max-response-bytes" in ev[-1]["error"]["message"], ev[-1:]
        assert 100000 < len(payload) < 200000, len(payload)
        # requests within the limit are untouched
        st, r = s.post("/v1/completions", {"prompt": long_prompt[:100], "echo": True,
                                           "logprobs": 2, "max_tokens": 20, "ignore_eos": True})
        assert st == 200 and r["usage"]["completion_tokens"] == 20, (st, r)
        assert s.metric("rosa_running_requests") == 0
    finally:
        assert s.stop() == 0


def test_stream_backpressure():
    """Item 4: a client that does not read pauses its stream's generation (bounded buffering);
    reading again resumes it to the end; a client that never reads is closed by --idle-timeout
    and its request cancelled."""
    s = Server("--idle-timeout", "3")
    try:
        def start(n_tokens):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.settimeout(30)
            c.connect(("127.0.0.1", s.port))
            body = json.dumps({"prompt": [65, 66], "max_tokens": n_tokens, "ignore_eos": True,
                               "logprobs": 20, "stream": True}).encode()
            c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % len(body) + body)
            return c

        def wait_paused(want):
            deadline = time.time() + 60
            while time.time() < deadline and s.metric("rosa_paused_requests") != want:
                time.sleep(0.05)
            assert s.metric("rosa_paused_requests") == want

        c = start(12000)  # about 6.5 MB of events: more than the kernel buffers hold
        wait_paused(1)
        # the engine sees the pause at its next iteration: a step already under way (slow on a
        # loaded machine) may still add its token; then the count must stand still
        made, deadline = s.metric("rosa_generation_tokens_total"), time.time() + 10
        while time.time() < deadline:
            time.sleep(0.2)
            now = s.metric("rosa_generation_tokens_total")
            if now == made:
                break
            made = now
        time.sleep(0.6)
        assert s.metric("rosa_generation_tokens_total") == made < 12000, made
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        data = b""
        while True:  # read again: generation resumes and the stream ends properly
            d = c.recv(1 << 20)
            if not d:
                break
            data += d
        c.close()
        ev, done = sse_events(data.split(b"\r\n\r\n", 1)[1])
        assert done and "error" not in ev[-1], ev[-1:]
        assert s.metric("rosa_generation_tokens_total") == 12000
        assert s.metric("rosa_paused_requests") == 0
        c = start(12000)  # never reads: cut by --idle-timeout, the request cancelled
        wait_paused(1)
        deadline = time.time() + 15
        while time.time() < deadline and s.metric("rosa_running_requests") != 0:
            time.sleep(0.1)
        assert s.metric("rosa_running_requests") == 0
        assert s.metric("rosa_paused_requests") == 0
        assert s.metric("rosa_cancellations_total") == 1
        assert s.metric("rosa_generation_tokens_total") < 24000
        c.close()
    finally:
        assert s.stop() == 0


def test_read_deadline_for_slow_clients():
    """Item 5: a request trickled in (one header line, or a body byte, at a time) is cut at
    --read-timeout even though each byte resets --idle-timeout."""
    s = Server("--read-timeout", "1.5", "--idle-timeout", "30")
    try:
        heads = raw(s.port, b"POST /v1/completions HTTP/1.1\r\n")
        body = raw(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 100\r\n\r\n{")
        fast = raw(s.port, None)
        t0 = time.time()
        cut = {}
        while time.time() - t0 < 6 and len(cut) < 2:
            for name, c in (("heads", heads), ("body", body)):
                if name in cut:
                    continue
                try:
                    c.sendall(b"X-Slow: 1\r\n" if name == "heads" else b" ")
                except OSError:
                    cut[name] = time.time() - t0
                    continue
                if closed_within(c, 0.4):
                    cut[name] = time.time() - t0
        assert set(cut) == {"heads", "body"}, cut
        assert all(1.0 < v < 4.0 for v in cut.values()), cut
        assert s.metric("rosa_read_timeouts_total") >= 2
        # a keep-alive client that sends whole requests is not concerned, even past the deadline
        body_ok = json.dumps({"prompt": [65], "max_tokens": 1}).encode()
        for _ in range(3):
            fast.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(body_ok) + body_ok)
            head = read_head(fast, 5)
            assert head.startswith(b"HTTP/1.1 200"), head[:60]
            n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            rest = head.split(b"\r\n\r\n", 1)[1]
            while len(rest) < n:
                rest += fast.recv(4096)
            time.sleep(0.7)
        fast.close()
    finally:
        assert s.stop() == 0
    # a request line trickled a byte at a time: bounded by the longer of the two timeouts
    s = Server("--read-timeout", "1", "--idle-timeout", "2")
    try:
        c = raw(s.port, None)
        t0 = time.time()
        line = b"GET /health HTTP/1.1\r\n"
        for k in range(40):
            try:
                c.sendall(line[k % len(line):k % len(line) + 1] if k < len(line) - 2 else b"X")
            except OSError:
                break
            if closed_within(c, 0.4):
                break
        took = time.time() - t0
        assert 1.5 < took < 4.5, took
        c.close()
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_accepts_after_idle_connections_at_the_limit, test_refused_from_the_headers,
         test_session_count_evicts_lru, test_response_size_limit, test_stream_backpressure,
         test_read_deadline_for_slow_clients])
