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
         "--device", "--precision", "--gpu-memory", "--rollback-tokens"]


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
            "--threads", "1", "--device", "cpu", "--precision", "f32", "--rollback-tokens", "40"]
    s = Server(*opts)
    try:
        st, r = s.get("/v1/models")
        assert st == 200, r
        m = json.loads(r)["data"][0]
        assert m["rosa"]["bits_per_route"] == 2 and m["rosa"]["inject_mode"] == "pre_attn", m
        assert m["attention_window"] == 3 and m["global_layers"] == 0, m
        assert m["rollback_tokens"] == 40, m
    finally:
        s.stop()
    d = os.path.join(s.cache, "demo")
    model, adapter = os.path.join(d, "model"), os.path.join(d, "adapter", "rosa_adapter.safetensors")
    q = subprocess.run([CLI, "info", "--model", model, "--adapter", adapter, *opts],
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 0, q.stderr
    assert "M=2 bits per route" in q.stdout and "inject pre_attn" in q.stdout, q.stdout
    assert "window=3" in q.stdout and "threads 1" in q.stdout, q.stdout
    assert "rollback_tokens 40" in q.stdout, q.stdout
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
                       (["--rollback-tokens", "2000000"],
                        "--rollback-tokens expects an integer in [0, 1048576]"),
                       (["--window"], "--window needs a value"),
                       (["--bits-per-route", "4"], "--bits-per-route was renamed: use --rosa-bits"),
                       (["--inject-mode", "pre_attn"], "--inject-mode was renamed: use --rosa-mode")):
        a, b = refusal(args)
        assert a == b and want in a, (args, a, b)


PARITY = os.path.join(SRC, "tests", "data", "parity")


def test_rope_shown_and_window_alone_refused_alike():
    """The rope in effect, in rosa-cli info and /v1/models, on a YaRN checkpoint saved by
    transformers; --window alone on a checkpoint with no windowed layer refused by both."""
    yarn = os.path.join(PARITY, "yarn-f32-p5")
    q = subprocess.run([CLI, "info", "--model", yarn], capture_output=True, text=True, timeout=60)
    assert q.returncode == 0, q.stderr
    assert ("rope: yarn theta 10000 factor 4 original_max_positions 64 attention_factor 1.138629 "
            "beta_fast 32 beta_slow 1 truncate true") in q.stdout, q.stdout
    s = Server("--model", yarn)
    try:
        st, r = s.get("/v1/models")
        assert st == 200, r
        rope = json.loads(r)["data"][0]["rope"]
        assert abs(rope.pop("attention_factor") - 1.1386294) < 1e-6, rope
        assert rope == {"type": "yarn", "theta": 10000, "factor": 4, "original_max_position_embeddings": 64,
                        "beta_fast": 32, "beta_slow": 1, "truncate": True}, rope
    finally:
        s.stop()
    full = os.path.join(PARITY, "full-tied-f32-p5")
    q = subprocess.run([CLI, "info", "--model", full, "--window", "8"], capture_output=True, text=True, timeout=60)
    assert q.returncode != 0 and "add --global-layers" in q.stderr, q.stderr
    # the server stays up (answering 503 with why) and logs the same message
    p = subprocess.Popen([SERVER, "--port", "0", "--model", full, "--window", "8"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        for line in p.stderr:
            if "model load failed" in line:
                break
        assert q.stderr.strip().split(": ", 2)[-1] in line, (q.stderr, line)
    finally:
        p.terminate()
        p.wait(20)


if __name__ == "__main__":
    run([test_help_lists_the_same_run_options, test_same_flags_same_effect,
         test_bad_values_and_old_names_refused_alike, test_rope_shown_and_window_alone_refused_alike])
