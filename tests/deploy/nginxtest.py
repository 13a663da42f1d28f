"""nginxtest.py: run the shipped nginx router (deploy/nginx) on a loopback port in front of given
backends.  Only the upstream servers, the listen address and the file paths are rewritten; the
hashing and retry settings are the shipped ones."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

SRC = os.environ.get("ROSA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(conf, backends, port, tmp):
    """The shipped nginx.conf with loopback backends and paths under tmp."""
    up = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in backends)
    conf, n = re.subn(r"^\s*server rosa:8080 [^\n]*;\n", up, conf, flags=re.M)
    assert n == 1, "nginx.conf: upstream server line not found"
    conf, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", conf)
    assert n == 1
    conf = conf.replace("include rosa-proxy.conf;",
                        f"include {os.path.join(SRC, 'deploy', 'nginx', 'rosa-proxy.conf')};")
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")
    head = f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log info;\n"
    if os.geteuid() == 0:
        head += "user root;\n"
    paths = "".join(f"    {k}_temp_path {tmp}/{k};\n" for k in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = conf.replace("http {\n", "http {\n" + paths, 1)
    return head + conf


class Nginx:
    def __init__(self, backends):
        self.bin = find_nginx()
        if not self.bin:
            raise RuntimeError("nginx not found (deploy/install-test-deps.sh installs it)")
        self.tmp = tempfile.mkdtemp(prefix="rosa-nginx-")
        with open(os.path.join(SRC, "deploy", "nginx", "nginx.conf")) as f:
            self.template = f.read()
        # the free port may be taken between the probe and nginx's bind: try a few
        for attempt in range(5):
            if self._start(backends):
                return
        self.stop()
        raise RuntimeError("nginx did not start:\n" + self.errors())

    def _start(self, backends):
        self.port = free_port()
        conf = render(self.template, backends, self.port, self.tmp)
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        cmd = [self.bin, "-p", self.tmp, "-e", os.path.join(self.tmp, "error.log"), "-c",
               self.conf, "-g", "daemon off;"]
        t = subprocess.run(cmd[:-2] + ["-t"], capture_output=True, text=True, timeout=30)
        if t.returncode != 0:
            raise RuntimeError("nginx -t failed:\n" + t.stderr + "\n" + conf)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.proc.poll() is None
            except OSError:
                if self.proc.poll() is not None:
                    return False
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        return False

    def errors(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
