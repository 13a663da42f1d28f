"""test_strict_input.py: strict input on the wire (issue 14, items 9-11): one JSON value per body,
no NUL in strings, exact field names, one session-id rule for the body field and the header,
unambiguous body framing.  Real rosa-server on 127.0.0.1, demo model; every socket has a
timeout.  (The parser's own cases are in tests/test_server_request.c and the fuzz target.)"""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run  # noqa: E402


def raw_request(port, data, timeout=5):
    """Send raw bytes, return the response head and what followed (up to 64 KiB)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(data)
        got = b""
        while b"\r\n\r\n" not in got:
            d = c.recv(65536)
            if not d:
                break
            got += d
        return got
    finally:
        c.close()


def test_json_bodies_are_strict():
    """Item 9: trailing data, NUL (raw or \\u0000) and repeated keys are refused, not read in
    part; /tokenize takes its field names exactly."""
    s = Server()
    try:
        good = b'{"prompt": "The passkey is 4", "max_tokens": 1}'
        cases = [good + b" garbage", good + b'{"prompt": "x"}', good + b"\x00",
                 b'{"prompt": "The passkey\\u0000 is 4", "max_tokens": 1}',
                 b'{"prompt": "a", "stop": ["\\u0000"], "max_tokens": 1}',
                 b'{"prompt\\u0000": "a", "max_tokens": 1}',
                 b'{"prompt": "a", "max_tokens": 1, "max_tokens": 999}']
        for body in cases:
            st, data, _ = s.request("POST", "/v1/completions", body)
            r = json.loads(data)
            assert st == 400 and r["error"]["type"] == "invalid_request_error", (body, st, r)
        st, data, _ = s.request("POST", "/v1/chat/completions",
                                b'{"messages": [{"role": "user", "content": "hi\\u0000 there"}]}')
        assert st == 400, data
        st, data, _ = s.request("POST", "/v1/completions", good + b" \r\n\t")
        assert st == 200, data
        for body, want in [({"prompt|text": "a"}, 400), ({"prompt": "a", "text": "b"}, 400),
                           ({"text": "ab"}, 200), ({"|model|": "x", "prompt": "a"}, 400)]:
            st, r = s.post("/tokenize", body)
            assert st == want, (body, st, r)
        st, r = s.post("/tokenize", {"text": "ab"})
        assert r["tokens"] == [97, 98], r
    finally:
        assert s.stop() == 0


def test_session_id_header_is_validated():
    """Item 10: X-Session-Id follows the body field's rules; nothing odd reaches the list."""
    s = Server()
    try:
        body = json.dumps({"prompt": [65, 66], "max_tokens": 1}).encode()
        for sid in [b"../../etc/passwd", b"a/b", b"a\x01b", b"a b", b"x" * 129, b"\xc3\xa9t\xc3\xa9",
                    b""]:
            head = raw_request(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                               b"X-Session-Id: " + sid + b"\r\nContent-Length: %d\r\n"
                               b"Connection: close\r\n\r\n" % len(body) + body)
            assert head.startswith(b"HTTP/1.1 400"), (sid, head[:200])
            assert b"X-Session-Id" in head, head
        st, r = s.post("/v1/completions", {"prompt": [65, 66], "max_tokens": 1},
                       {"X-Session-Id": "ok-1.a:b_c"})
        assert st == 200, r
        st, data = s.get("/v1/sessions")
        assert [e["id"] for e in json.loads(data)["data"]] == ["ok-1.a:b_c"], data
    finally:
        assert s.stop() == 0


def test_body_framing_is_unambiguous():
    """Item 11: two Content-Length headers, or Content-Length with Transfer-Encoding: 400; a
    transfer coding other than chunked: 501 at once (not silence until --idle-timeout)."""
    s = Server("--idle-timeout", "30")
    body = b'{"prompt": [65], "max_tokens": 1}'
    n = len(body)
    try:
        cases = [
            (b"Content-Length: %d\r\nContent-Length: %d\r\n" % (n, n), b"400"),
            (b"Content-Length: %d\r\nContent-Length: 5\r\n" % n, b"400"),
            (b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % n, b"400"),
            (b"Transfer-Encoding: gzip\r\n", b"501"),
            (b"Transfer-Encoding: gzip, chunked\r\n", b"501"),
            (b"Transfer-Encoding: identity\r\n", b"501"),
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"501"),
        ]
        for hdrs, want in cases:
            head = raw_request(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + hdrs +
                               b"\r\n" + body, timeout=5)
            assert head.startswith(b"HTTP/1.1 " + want), (hdrs, head[:120])
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (n, body)
        head = raw_request(s.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)
        assert head.startswith(b"HTTP/1.1 200"), head[:120]
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    if not os.path.exists(os.environ.get("ROSA_SERVER", "build/server/rosa-server")):
        print("rosa-server not built")
        sys.exit(77)
    run([test_json_bodies_are_strict, test_session_id_header_is_validated,
         test_body_framing_is_unambiguous])
