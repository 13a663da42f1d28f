"""test_access_log.py: --verbose writes one line per finished request (method, path, status,
prompt / generated / reused tokens, time to first token, total ms), as JSON with --log-format
json and as text otherwise; without --verbose there is none (real rosa-server on 127.0.0.1, the
built-in demo model)."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run  # noqa: E402

PROMPT = list(b"The passkey is 47123. XXXXX. The passkey is")


def request_lines(s, want, timeout=10):
    """The request lines of the log but those of /health (the start-up polls) and /metrics,
    waiting until there are `want` (the line is written when MHD reports the request completed,
    a moment after the client has the response)."""
    deadline = time.time() + timeout
    while True:
        lines = [ln for ln in s.logtext().splitlines()
                 if ('"msg":"request"' in ln or re.search(r" info  [A-Z]+ /", ln))
                 and "/health" not in ln and "/metrics" not in ln]
        if len(lines) >= want or time.time() > deadline:
            return lines
        time.sleep(0.05)


def test_json_lines():
    s = Server("--verbose", "--log-format", "json")
    try:
        st, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 5, "temperature": 0,
                                           "session_id": "a", "return_token_ids": True})
        assert st == 200, r
        gen = r["choices"][0]["token_ids"]
        assert len(gen) == 5 and r["usage"]["completion_tokens"] == 5, r
        reused0 = s.metric("rosa_prompt_tokens_reused_total")
        # the next turn extends what the session holds: its prompt is partly reused
        st, events, done = s.stream("/v1/completions", {"prompt": PROMPT + gen + [46, 32], "max_tokens": 3,
                                                       "temperature": 0, "session_id": "a", "stream": True})
        assert st == 200 and done, events
        reused = s.metric("rosa_prompt_tokens_reused_total") - reused0
        assert reused > 0, reused
        st, _ = s.get("/nope")
        assert st == 404
        st, r = s.post("/v1/completions", {"prompt": []})
        assert st == 400, r
        lines = request_lines(s, 4)
        recs = [json.loads(ln) for ln in lines]
        assert all(r["level"] == "info" and r["time"].endswith("Z") for r in recs), recs
        gens = [r for r in recs if r["path"] == "/v1/completions"]
        assert len(gens) == 3, recs
        first, second, bad = gens
        assert first["method"] == "POST" and first["status"] == 200, first
        assert first["prompt_tokens"] == len(PROMPT) and first["generated_tokens"] == 5, first
        assert first["reused_tokens"] == 0, first
        assert 0 < first["ttft_ms"] <= first["total_ms"] < 60000, first
        assert second["status"] == 200 and second["prompt_tokens"] == len(PROMPT) + 7, second
        assert second["generated_tokens"] == 3 and second["reused_tokens"] == reused, second
        assert 0 < second["ttft_ms"] <= second["total_ms"], second
        assert bad["status"] == 400 and bad["generated_tokens"] == 0 and bad["ttft_ms"] is None, bad
        nope = [r for r in recs if r["path"] == "/nope"]
        assert len(nope) == 1 and nope[0]["method"] == "GET" and nope[0]["status"] == 404, recs
        assert all(r["total_ms"] >= 0 for r in recs), recs
    finally:
        assert s.stop() == 0


def test_text_lines_and_quiet_default():
    s = Server("--verbose")
    try:
        st, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2, "temperature": 0})
        assert st == 200, r
        st, _ = s.get("/v1/models")
        assert st == 200
        lines = request_lines(s, 2)
        assert len(lines) == 2, lines
        m = re.search(r" info  POST /v1/completions 200 prompt_tokens=(\d+) generated_tokens=2 reused_tokens=0 "
                      r"ttft_ms=([0-9.]+) total_ms=([0-9.]+)$", lines[0])
        assert m and int(m.group(1)) == len(PROMPT), lines[0]
        assert float(m.group(2)) <= float(m.group(3)), lines[0]
        assert re.search(r" info  GET /v1/models 200 prompt_tokens=0 generated_tokens=0 reused_tokens=0 "
                         r"ttft_ms=- total_ms=[0-9.]+$", lines[1]), lines[1]
    finally:
        assert s.stop() == 0
    s = Server()
    try:
        st, r = s.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2, "temperature": 0})
        assert st == 200, r
        time.sleep(0.3)
        assert request_lines(s, 1, timeout=0.5) == [], s.logtext()
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    run([test_json_lines, test_text_lines_and_quiet_default])
