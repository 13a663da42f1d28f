"""test_readme.py: run the commands of README.md, in order, in a copy of the repository.

Each ```sh block is run with bash (errexit, pipefail) according to the marker comment before
it, `<!-- readme-test: KIND [expect=TEXT] [stdin=TEXT] -->`:
  (none)     run; must exit 0 (and print TEXT when expect= is given)
  server     start in the background with --port appended (a free loopback port), wait for
             /health; it serves the blocks after it until the next server block
  tokenizer  as (none) when the running server has a tokenizer; otherwise its output must be
             the server's error naming the tokenizer
  ci         not run here (it is what CI runs around this test): must equal .ci/run's steps
  network, docker   not run (no network, no Docker engine here): must only hold pip /
             huggingface-cli, resp. docker commands
Commands use localhost:8080, rewritten to the free port.  The real-checkpoint paths
(models/Qwen3-0.6B, models/rosa_adapters.pt) are replaced by the golden checkpoint in ../shared;
when that is absent those blocks are skipped (said so in the output)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SRC, run, shared_dir  # noqa: E402

REAL_MODEL = {"models/Qwen3-0.6B": "golden/tiny-post-m4/model",
              "models/rosa_adapters.pt": "golden/tiny-post-m4/adapter/rosa_adapters.pt"}


def blocks(text):
    out = []
    for m in re.finditer(r"(?:<!-- readme-test:([^>]*)-->\s*\n)?```sh\n(.*?)```", text, re.S):
        marker = (m.group(1) or "").strip()
        opts = dict(re.findall(r"(\w+)=(\S+(?: \S+)*?)(?= \w+=|$)", marker))
        kind = marker.split()[0] if marker and "=" not in marker.split()[0] else ""
        out.append((kind, opts, m.group(2).strip()))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_repo(dst):
    try:
        files = subprocess.run(["git", "-C", SRC, "ls-files", "-co", "--exclude-standard", "-z"],
                               capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files:
        for f in filter(None, files):
            s = os.path.join(SRC, f)
            if os.path.isfile(s):
                os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
                shutil.copy2(s, os.path.join(dst, f))
    else:
        shutil.copytree(SRC, dst, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("build*", ".git", "__pycache__"))


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status
    except Exception:
        return 0


def server_has_tokenizer(port, key):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models",
                                 headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"][0].get("tokenizer") is True


def sse_text(out):
    """The text of a stream's chunks, joined (a streamed answer arrives a token per event)."""
    text = ""
    for line in out.splitlines():
        if line.startswith("data: {"):
            for c in json.loads(line[6:]).get("choices", []):
                text += c.get("text") or (c.get("delta") or {}).get("content") or ""
    return text


def test_readme_commands():
    readme = open(os.path.join(SRC, "README.md")).read()
    bl = blocks(readme)
    assert len(bl) >= 8, bl
    work = tempfile.mkdtemp(prefix="rosa-readme-")
    repo, home = os.path.join(work, "repo"), os.path.join(work, "home")
    os.makedirs(home)
    copy_repo(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROSA_", "XDG_CACHE"))}
    env["HOME"] = home
    shared = shared_dir()
    server, port, key, ran, skipped = None, None, "", 0, []
    used_subst = set()

    def stop_server():
        if server and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    try:
        server_skipped = False
        for kind, opts, cmd in bl:
            for k, v in REAL_MODEL.items():
                if k in cmd:
                    used_subst.add(k)
                    if shared:
                        cmd = cmd.replace(k, os.path.join(shared, v))
            if kind == "server":
                server_skipped = not shared and any(k in cmd for k in REAL_MODEL)
            if kind == "ci":
                steps = [ln.strip() for ln in open(os.path.join(SRC, ".ci", "run"))
                         if re.match(r"\s*(deploy|tests)/", ln)]
                assert cmd == " && ".join(steps), (cmd, steps)
                skipped.append(("ci", cmd))
                continue
            if kind in ("network", "docker"):
                allowed = {"network": ("pip", "huggingface-cli"), "docker": ("docker",)}[kind]
                for part in re.split(r"&&|\n", cmd):
                    assert part.strip().split()[0] in allowed, (kind, part)
                skipped.append((kind, cmd))
                continue
            if server_skipped:  # this block and those using its server
                skipped.append(("no ../shared", cmd))
                continue
            if kind == "server":
                stop_server()
                port = free_port()
                m = re.search(r"ROSA_API_KEY=(\S+)", cmd)
                key = m.group(1) if m else ""
                log = open(os.path.join(work, f"server-{port}.log"), "w")
                server = subprocess.Popen(["bash", "-c", "set -eo pipefail\n" + cmd +
                                           f" --port {port}"], cwd=repo, env=env, stdout=log,
                                          stderr=log, start_new_session=True)
                deadline = time.time() + 1200  # the first one builds
                while health(port) != 200:
                    assert server.poll() is None and time.time() < deadline, \
                        open(log.name).read()[-3000:]
                    time.sleep(0.2)
                ran += 1
                continue
            assert server is not None, f"no server running for: {cmd}"
            line = cmd.replace("localhost:8080", f"127.0.0.1:{port}")
            benv = dict(env, ROSA_URL=f"http://127.0.0.1:{port}")
            if key:
                benv["ROSA_API_KEY"] = key
            stdin = opts.get("stdin", "").replace("\\n", "\n") + "\n" if "stdin" in opts else ""
            p = subprocess.run(["bash", "-c", "set -eo pipefail\n" + line], cwd=repo, env=benv,
                               input=stdin, capture_output=True, text=True, timeout=600)
            out = p.stdout + p.stderr
            if kind == "tokenizer" and not server_has_tokenizer(port, key):
                assert "tokenizer" in out, (cmd, out[-2000:])
                skipped.append(("server without tokenizer: checked the error", cmd))
                continue
            assert p.returncode == 0, (cmd, out[-3000:])
            if kind == "tokenizer":
                assert '"error"' not in p.stdout, (cmd, p.stdout[-2000:])
            if "expect" in opts:
                assert opts["expect"] in p.stdout + sse_text(p.stdout), \
                    (cmd, opts["expect"], p.stdout[-2000:])
            ran += 1
        assert used_subst == set(REAL_MODEL), used_subst
    finally:
        stop_server()
    for why, cmd in skipped:
        print(f"not run ({why}): {cmd[:100]}")
    print(f"ran {ran} README blocks")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run([test_readme_commands])
