"""test_examples.py: clients/examples against a real rosa-server (demo model, with an API key):
every curl line of curl.sh succeeds (lines marked "tokenizer" answer 400 naming the tokenizer
when the build has none), openai_sdk.py runs and recalls the passkey, and the request
lm-evaluation-harness sends for log-likelihoods is answered in the shape its parser reads."""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SRC, Server, run  # noqa: E402

EX = os.path.join(SRC, "clients", "examples")
KEY = "ex-key"


def has_tokenizer(s):
    st, data, _ = s.request("GET", "/v1/models", headers={"Authorization": "Bearer " + KEY})
    return json.loads(data)["data"][0].get("tokenizer") is True


def test_curl_lines():
    s = Server("--api-key", KEY)
    try:
        tok = has_tokenizer(s)
        text = open(os.path.join(EX, "curl.sh")).read()
        head = text[:text.index("\ncurl ")]  # the variables
        lines = [ln for ln in text.splitlines() if ln.startswith("curl ")]
        assert len(lines) >= 14
        env = dict(os.environ, ROSA_URL=f"http://127.0.0.1:{s.port}", ROSA_API_KEY=KEY)
        paths = set()
        for ln in lines:
            paths.add(re.search(r'"\$U(/[a-z/0-9-]*)', ln).group(1).rstrip("/"))
            script = (head + "\ncurl() { command curl --fail-with-body \"$@\"; }\n" + ln + "\n")
            p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                               timeout=60)
            if "# tokenizer" in ln and not tok:
                assert p.returncode != 0 and "tokenizer" in p.stdout, (ln, p.stdout)
                continue
            assert p.returncode == 0, (ln, p.stdout, p.stderr)
            assert p.stdout.strip(), ln
            if "DELETE" not in ln and "metrics" not in ln and "stream" not in ln:
                json.loads(p.stdout)
            if '"stream": true' in ln:
                assert p.stdout.rstrip().endswith("data: [DONE]"), p.stdout
        # one line per endpoint of docs/SERVER.md
        want = {"/health", "/metrics", "/v1/models", "/v1/models/rosa-copy-demo",
                "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize",
                "/v1/sessions", "/v1/sessions/demo-1"}
        assert want <= paths, want - paths
    finally:
        assert s.stop() == 0


def test_openai_sdk_example():
    s = Server("--api-key", KEY)
    try:
        env = dict(os.environ, ROSA_URL=f"http://127.0.0.1:{s.port}", ROSA_API_KEY=KEY)
        p = subprocess.run([sys.executable, os.path.join(EX, "openai_sdk.py")], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "token ids -> b'47123'" in p.stdout, p.stdout
        assert "session usage: 100 prompt tokens" in p.stdout, p.stdout
        if has_tokenizer(s):
            assert " 47123" in p.stdout and "chat:" in p.stdout, p.stdout
    finally:
        assert s.stop() == 0


def test_lm_eval_loglikelihood_request():
    """lm_eval's local-completions (tokenized_requests=True) sends a batch of token-id prompts
    with echo, logprobs=1, max_tokens=1 and reads token_logprobs[ctxlen:-1] and
    top_logprobs[ctxlen:-1] of each choice, in prompt order."""
    s = Server()
    try:
        ctx, cont = list(b"The passkey is 47123. XXXXX. The passkey is"), list(b" 47123")
        batch = [ctx + cont, ctx + list(b" 99999")]
        st, r = s.post("/v1/completions", {"model": "rosa-copy-demo", "prompt": batch,
                                            "temperature": 0, "max_tokens": 1, "logprobs": 1,
                                            "seed": 1234, "echo": True})
        assert st == 200, r
        assert [c["index"] for c in r["choices"]] == [0, 1]
        scores = []
        for c, p in zip(r["choices"], batch):
            lp = c["logprobs"]
            assert len(lp["token_logprobs"]) == len(p) + 1 and lp["token_logprobs"][0] is None
            assert len(lp["top_logprobs"]) == len(p) + 1
            cont_lp = lp["token_logprobs"][len(ctx):-1]
            tops = lp["top_logprobs"][len(ctx):-1]
            assert len(cont_lp) == len(cont) and all(isinstance(t, dict) and t for t in tops)
            scores.append(sum(cont_lp))
        # the continuation in the text is far more likely than a made-up one (ROSA recall)
        assert scores[0] > scores[1] + 10, scores
    finally:
        assert s.stop() == 0


if __name__ == "__main__":
    run([test_curl_lines, test_openai_sdk_example, test_lm_eval_loglikelihood_request])
