"""test_run_options.py: rosa-cli and rosa-server speak one vocabulary of run options.
Both list the same run-option lines in --help (same words, same order), both accept every one of
them on the demo model with the same effect (rosa-cli info and /v1/models report it), both give
the same message for a bad value, and the server's old spellings are refused with the new name."""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SERVER, SRC, Server, run  # noqa: E402

CLI = os.environ.get("ROSA_CLI", os.path.join(SRC, "build", "clients", "rosa-cli"))
FLAGS = ["--window", "--global-layers", "--rosa-bits", "--rosa-mode", "--no-rosa", "--threads",
         "--device", "--precision", "--gpu-memory"]


def run_options_block(text):
    """The lines of the 'run options' section of a --help text."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("run options"))
    block = []
    for l in lines[start + 1:]:
        if not l.strip():
            break
        block.append(l)
    return block


def test_help_lists_the_same_run_options():
    srv = subprocess.run([SERVER, "--help"], capture_output=True, text=True, timeout=30)
    cli = subprocess.run([CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert srv.returncode == 0 and cli.returncode == 0, (srv.stderr, cli.stderr)
    a, b = run_options_block(srv.stdout), run_options_block(cli.stdout)
    assert a == b, (a, b)
    listed = [re.match(r"\s+(--[a-z-]+)", l).group(1) for l in a if re.match(r"\s+--", l)]
    assert listed == FLAGS, listed


def test_same_flags_same_effect():
    opts = ["--window", "3", "--global-layers", "0", "--rosa-bits", "2", "--rosa-mode", "pre_attn",
            "--threads", "1", "--device", "cpu", "--precision", "f32"]
    s = Server(*opts)
    try:
        st, r = s.get("/v1/models")
        assert st == 200, r
        m = json.loads(r)["data"][0]
        assert m["rosa"]["bits_per_route"] == 2 and m["rosa"]["inject_mode"] == "pre_attn", m
        assert m["attention_window"] == 3 and m["global_layers"] == 0, m
    finally:
        s.stop()
    d = os.path.join(s.cache, "demo")
    model, adapter = os.path.join(d, "model"), os.path.join(d, "adapter", "rosa_adapter.safetensors")
    q = subprocess.run([CLI, "info", "--model", model, "--adapter", adapter, *opts],
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 0, q.stderr
    assert "M=2 bits per route" in q.stdout and "inject pre_attn" in q.stdout, q.stdout
    assert "window=3" in q.stdout and "threads 1" in q.stdout, q.stdout
    q = subprocess.run([CLI, "info", "--model", model, "--adapter", adapter, "--no-rosa"],
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 0 and "rosa layers (0)" in q.stdout, q.stdout + q.stderr


def refusal(args):
    """stderr of both programs for the same bad command line (each must exit non-zero)."""
    srv = subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=30)
    cli = subprocess.run([CLI, "info", "--model", "/nonexistent", *args], capture_output=True,
                         text=True, timeout=30)
    assert srv.returncode != 0 and cli.returncode != 0, (srv, cli)
    return srv.stderr.split(": ", 1)[-1].strip(), cli.stderr.split(": ", 1)[-1].strip()


def test_bad_values_and_old_names_refused_alike():
    for args, want in ((["--rosa-bits", "9"], "--rosa-bits expects an integer in [1, 8]"),
                       (["--rosa-mode", "sideways"], "--rosa-mode is post_attn or pre_attn"),
                       (["--device", "tpu"], "--device is cpu or cuda"),
                       (["--precision", "f8"], "--precision is f32 or bf16"),
                       (["--gpu-memory", "-1"], "--gpu-memory takes GiB"),
                       (["--window"], "--window needs a value"),
                       (["--bits-per-route", "4"], "--bits-per-route was renamed: use --rosa-bits"),
                       (["--inject-mode", "pre_attn"], "--inject-mode was renamed: use --rosa-mode")):
        a, b = refusal(args)
        assert a == b and want in a, (args, a, b)


if __name__ == "__main__":
    run([test_help_lists_the_same_run_options, test_same_flags_same_effect,
         test_bad_values_and_old_names_refused_alike])
