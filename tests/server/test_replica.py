"""test_replica.py: the replica identity header and the API key from the environment, which
the scale-out router and the Docker image rely on (real rosa-server on 127.0.0.1)."""
import http.client
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import SERVER, Server, run  # noqa: E402

HDR = "X-Rosa-Replica"


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def test_replica_header_on_every_response():
    s = Server("--replica-id", "r-7.a_b:c", "--api-key", "k1")
    try:
        auth = {"Authorization": "Bearer k1"}
        cases = [("GET", "/health", None, {}, 200), ("GET", "/nope", None, {}, 404),
                 ("GET", "/v1/models", None, {}, 401), ("GET", "/v1/models", None, auth, 200),
                 ("POST", "/v1/completions", {"prompt": [65, 66], "max_tokens": 2}, auth, 200),
                 ("POST", "/v1/completions", {"prompt": []}, auth, 400)]
        for method, path, body, h, want in cases:
            st, _, headers = s.request(method, path, body, h)
            assert st == want, (path, st)
            assert header(headers, HDR) == "r-7.a_b:c", (path, headers)
        # a stream carries it too
        c = s.conn()
        c.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": [65, 66], "max_tokens": 3, "stream": True}),
            headers={"Content-Type": "application/json", **auth})
        r = c.getresponse()
        assert r.status == 200 and r.getheader(HDR) == "r-7.a_b:c", r.getheaders()
        assert r.read().endswith(b"data: [DONE]\n\n")
        c.close()
    finally:
        assert s.stop() == 0


def test_replica_default_is_hostname():
    s = Server()
    try:
        _, _, headers = s.request("GET", "/health")
        want = "".join(ch if " " < ch <= "~" else "_" for ch in socket.gethostname())
        assert header(headers, HDR) == want, (headers, want)
    finally:
        assert s.stop() == 0


def test_bad_replica_id_refused():
    for bad in ["", "a b", "x\r\nSet-Cookie: y", "é", "a" * 128]:
        p = subprocess.run([SERVER, "--port", "0", "--replica-id", bad], capture_output=True,
                           timeout=20)
        assert p.returncode == 2 and b"--replica-id" in p.stderr, (bad, p)


def test_api_key_from_environment():
    os.environ["ROSA_API_KEY"] = "from-env"
    try:
        s = Server()
    finally:
        del os.environ["ROSA_API_KEY"]
    try:
        st, _, _ = s.request("GET", "/v1/models")
        assert st == 401, st
        st, _, _ = s.request("GET", "/v1/models", headers={"Authorization": "Bearer from-env"})
        assert st == 200, st
        st, _, _ = s.request("GET", "/health")
        assert st == 200, st
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    run([test_replica_header_on_every_response, test_replica_default_is_hostname,
         test_bad_replica_id_refused, test_api_key_from_environment])
