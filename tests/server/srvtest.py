"""srvtest.py: start a real rosa-server on 127.0.0.1 with a free port, talk raw HTTP to it,
stop it.  Standard library only; every call has a timeout."""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SERVER = os.environ.get("ROSA_SERVER", "build/server/rosa-server")
SRC = os.environ.get("ROSA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def shared_dir():
    d = os.environ.get("ROSA_SHARED") or os.path.join(SRC, "..", "shared")
    return d if os.path.isdir(d) else None


class Server:
    def __init__(self, *args, timeout=30):
        self.cache = tempfile.mkdtemp(prefix="rosa-srv-test-")
        # removed when the test program exits (tests may still read the demo model after stop)
        atexit.register(shutil.rmtree, self.cache, True)
        cmd = [SERVER, "--port", "0", "--host", "127.0.0.1", "--cache-dir",
               os.path.join(self.cache, "demo"), *args]
        # append mode: the server writes through the same open file that seek(0) + read() below
        # move around; O_APPEND keeps its lines from landing over old ones
        self.log = open(os.path.join(self.cache, "server.log"), "a+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                break
            self.log.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)
        if self.port is None:
            log = self.logtext()
            self.stop()
            raise RuntimeError("server did not start:\n" + log)
        while time.time() < deadline:
            st, _ = self.get("/health")
            if st == 200:
                return
            time.sleep(0.05)
        log = self.logtext()
        self.stop()
        raise RuntimeError("server not ready:\n" + log)

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, dict(r.getheaders())

    def get(self, path):
        try:
            st, data, _ = self.request("GET", path, timeout=5)
            return st, data
        except OSError:
            return 0, b""

    def post(self, path, body, headers=None):
        st, data, _ = self.request("POST", path, body, headers)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data

    def stream(self, path, body):
        """POST with stream: returns (status, list of parsed events, saw_done)."""
        c = self.conn()
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read().decode()
        c.close()
        events, done = [], False
        for block in raw.split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), repr(block)
            payload = block[6:]
            if payload == "[DONE]":
                done = True
            else:
                assert not done, "data after [DONE]"
                events.append(json.loads(payload))
        return r.status, events, done

    def metric(self, name):
        st, data = self.get("/metrics")
        for line in data.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("server did not stop on signal")
        if self.log.closed:
            return self.proc.returncode
        if self.proc.returncode != 0:  # show the log here: the test may not
            sys.stderr.write("server exited with %d:\n%s\n" % (self.proc.returncode,
                                                                self.logtext()[-4000:]))
        self.log.close()
        return self.proc.returncode


def run(tests):
    failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            print(f"ok   {t.__name__} ({time.time() - t0:.2f}s)")
        except Exception as e:  # report and continue
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {e}")
            failed += 1
    sys.exit(1 if failed else 0)
