"""test_bench_cli.py: rosa-cli bench decode|prefill options on the demo model (small and quick):
--no-rosa-run runs only the window-only model, --rosa-only only the ROSA one, both together are
refused, and each printed line is the machine-readable one the docs quote."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SRC, Server, run  # noqa: E402

CLI = os.environ.get("ROSA_CLI", os.path.join(SRC, "build", "clients", "rosa-cli"))


def demo_model():
    """The built-in demo model as a server writes it, with its adapter where bench looks."""
    s = Server()
    s.stop()
    d = os.path.join(s.cache, "demo")
    model = os.path.join(d, "model")
    os.symlink(os.path.join(d, "adapter", "rosa_adapter.safetensors"),
               os.path.join(model, "rosa_adapter.safetensors"))
    return model


def bench(model, *args):
    return subprocess.run([CLI, "bench", "prefill", "--model", model, "--prompt", "8",
                           "--threads", "1", *args], capture_output=True, text=True, timeout=120)


def configs(out):
    return re.findall(r"^bench prefill config=(\S+) .*tokens_per_s=[0-9.]+", out, re.M)


def test_run_selection():
    model = demo_model()
    q = bench(model)
    assert q.returncode == 0 and configs(q.stdout) == ["rosa", "window_only"], q.stdout + q.stderr
    q = bench(model, "--no-rosa-run")
    assert q.returncode == 0 and configs(q.stdout) == ["window_only"], q.stdout + q.stderr
    q = bench(model, "--rosa-only")
    assert q.returncode == 0 and configs(q.stdout) == ["rosa"], q.stdout + q.stderr
    q = bench(model, "--rosa-only", "--no-rosa-run")
    assert q.returncode == 2 and "nothing to run" in q.stderr, q.stdout + q.stderr


if __name__ == "__main__":
    run([test_run_selection])
