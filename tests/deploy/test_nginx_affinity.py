"""test_nginx_affinity.py: three rosa-server replicas (demo model) behind the shipped nginx
router on loopback.  Requests of one session (X-Session-Id) always reach one replica, which
keeps the session; requests without the header are spread; when a session's replica is killed
the next request of that session is answered, with no error, by another replica that rebuilds
the session from the prompt and gives the same greedy answer; other sessions do not move."""
import http.client
import json
import os
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from nginxtest import Nginx, find_nginx  # noqa: E402
from srvtest import Server, run  # noqa: E402

TEXT = [ord(c) for c in "The passkey is 47123. " + "Grass is green. " * 40]


def post(port, body, session=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if session:
        h["X-Session-Id"] = session
    c.request("POST", "/v1/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data), r.getheader("X-Rosa-Replica")


def post_split(port, body, session):
    """POST with the headers and the body in separate packets, 50 ms apart (a slow client):
    nginx must still be able to resend the body to another replica."""
    data = json.dumps(body).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            f"\r\nX-Session-Id: {session}\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sk:
        sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sk.sendall(head)
        time.sleep(0.05)
        sk.sendall(data)
        r = http.client.HTTPResponse(sk)
        r.begin()
        return r.status, json.loads(r.read()), r.getheader("X-Rosa-Replica")


def complete(port, prompt, session=None, n=8):
    st, r, replica = post(port, {"prompt": prompt, "max_tokens": n, "temperature": 0,
                                 "return_token_ids": True}, session)
    assert st == 200, (st, r)
    return r["choices"][0]["token_ids"], replica


def sessions_on(server):
    st, data = server.get("/v1/sessions")
    assert st == 200
    return {d["id"]: d for d in json.loads(data)["data"]}


class Cluster:
    def __init__(self):
        self.replicas = {}
        try:
            for i in range(3):
                s = Server("--replica-id", f"r{i}", "--max-batch", "8", "--threads", "1")
                self.replicas[f"r{i}"] = s
            self.nginx = Nginx([s.port for s in self.replicas.values()])
        except Exception:
            self.stop()
            raise

    def stop(self):
        if getattr(self, "nginx", None):
            self.nginx.stop()
        for s in self.replicas.values():
            if s.proc.poll() is None:
                s.stop()


def test_affinity_and_failover():
    if not find_nginx():
        raise RuntimeError("nginx is missing: run deploy/install-test-deps.sh")
    cl = Cluster()
    port = cl.nginx.port
    try:
        # requests without a session id are spread over the replicas (round-robin)
        seen = {complete(port, TEXT[:20], n=2)[1] for _ in range(9)}
        assert len(seen) >= 2, seen

        # 12 sessions: each sticks to one replica over a conversation of 4 turns
        owner, hist = {}, {}
        for k in range(12):
            sid = f"user-{k}"
            prompt = TEXT[:30 + k]
            for turn in range(4):
                out, replica = complete(port, prompt, sid)
                owner.setdefault(sid, replica)
                assert replica == owner[sid], (sid, turn, replica, owner[sid])
                prompt = prompt + out + [ord(c) for c in f" turn {turn}. "]
            hist[sid] = prompt
        assert len(set(owner.values())) >= 2, owner  # the hash spreads sessions too
        # the state lives on the owner only, and covers the whole conversation so far
        for name, srv in cl.replicas.items():
            kept = sessions_on(srv)
            for sid, rep in owner.items():
                assert (sid in kept) == (rep == name), (sid, rep, name, sorted(kept))

        # kill the replica of user-0 (no goodbye: SIGKILL)
        victim = owner["user-0"]
        cl.replicas[victim].proc.kill()
        cl.replicas[victim].proc.wait()
        survivors = {n: s for n, s in cl.replicas.items() if n != victim}
        # the reference answer: the same prompt computed afresh on a live replica, no session
        ref, _ = complete(next(iter(survivors.values())).port, hist["user-0"])
        t0 = time.time()
        out, replica = complete(port, hist["user-0"], "user-0")
        dt = time.time() - t0
        assert replica in survivors, (replica, victim)
        assert out == ref, (out, ref)  # rebuilt from the prompt: same greedy continuation
        kept = sessions_on(survivors[replica])["user-0"]
        # the new replica fed the whole prompt and the answer (all but its last token)
        assert kept["tokens"] == len(hist["user-0"]) + len(out) - 1, (kept, len(hist["user-0"]))
        # the session stays on its new replica
        hist["user-0"] += out + [ord(c) for c in " again. "]
        for _ in range(3):
            out, r2 = complete(port, hist["user-0"], "user-0")
            assert r2 == replica, (r2, replica)
            hist["user-0"] += out
        # sessions of live replicas did not move (consistent hashing)
        for sid, rep in owner.items():
            if rep != victim:
                assert complete(port, hist[sid], sid)[1] == rep, sid
        # every session of the dead replica is served, without error, by a survivor
        for sid, rep in owner.items():
            if rep == victim:
                assert complete(port, hist[sid], sid)[1] in survivors, sid
        # a stream through the router: SSE events, the replica header, [DONE]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": hist["user-1"], "max_tokens": 5, "stream": True, "temperature": 0}),
            headers={"Content-Type": "application/json", "X-Session-Id": "user-1"})
        r = c.getresponse()
        raw = r.read().decode()
        c.close()
        assert r.status == 200 and r.getheader("X-Rosa-Replica") in survivors, r.getheaders()
        assert raw.endswith("data: [DONE]\n\n"), raw
        events = [json.loads(b[6:]) for b in raw.split("\n\n") if b.startswith("data: {")]
        assert len(events) >= 5 and events[-1]["choices"][0]["finish_reason"] == "length", raw
        print(f"failover request took {dt * 1000:.0f} ms; owners {sorted(owner.items())}")
    finally:
        cl.stop()


def test_replica_shutting_down_is_skipped():
    """SIGTERM: a draining replica keeps its open connections (a stream is still running) and
    answers new requests on them with 503; nginx, which keeps connections to replicas alive,
    must send the request to the next replica instead of passing the 503 on."""
    cl = Cluster()
    port = cl.nginx.port
    try:
        for _ in range(3):  # leave idle keep-alive connections from nginx to the replica
            _, rep = complete(port, TEXT[:40], "drain-me")
        srv = cl.replicas[rep]
        # a stream that the client does not read keeps the replica in its grace period
        hold = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        hold.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": TEXT, "max_tokens": 30000, "stream": True}),
            headers={"Content-Type": "application/json"})
        hold.getresponse()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert srv.proc.poll() is None  # still draining
        for _ in range(3):
            out, r2 = complete(port, TEXT[:40], "drain-me")
            assert r2 != rep and len(out) == 8, (r2, rep)
            st, r, r2 = post_split(port, {"prompt": TEXT[:40], "max_tokens": 8}, "drain-me")
            assert st == 200 and r2 != rep, (st, r, r2, rep)
        hold.close()
        assert srv.proc.wait(20) == 0
    finally:
        cl.stop()


if __name__ == "__main__":
    run([test_affinity_and_failover, test_replica_shutting_down_is_skipped])
