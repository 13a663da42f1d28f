"""test_session_rollback.py: kept sessions that a new prompt diverges from are rolled back to
their longest common prefix (rosa_session_truncate) and extended, over real HTTP: the answers
equal those of a fresh session (no session_id), usage.prompt_tokens_details.cached_tokens counts
the tokens not recomputed (also read through the openai client), and /metrics counts rollbacks
and the rebuilds beyond the horizon (--rollback-tokens).  Token-id prompts on the demo model,
and a multi-turn chat (Qwen3 template, thinking off, which drops the empty think block of every
earlier answer) on a small random ROSA checkpoint with the real Qwen3 tokenizer."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import SERVER, Server, run, shared_dir  # noqa: E402

GREEDY = {"temperature": 0, "return_token_ids": True, "ignore_eos": True}


def cached(r):
    return r["usage"]["prompt_tokens_details"]["cached_tokens"]


def complete(s, prompt, max_tokens, sid=None, **extra):
    body = {"prompt": prompt, "max_tokens": max_tokens, **GREEDY, **extra}
    if sid:
        body["session_id"] = sid
    st, r = s.post("/v1/completions", body)
    assert st == 200, r
    return r


def assert_rollback_works(s):
    """A session that holds 10 tokens and a prompt sharing 9 of them: rolled back, counted."""
    r0 = s.metric("rosa_session_rollbacks_total")
    for p in (list(range(1, 11)), list(range(1, 10)) + [77]):
        complete(s, p, 0, "probe")
    assert s.request("DELETE", "/v1/sessions/probe")[0] == 200
    assert s.metric("rosa_session_rollbacks_total") == r0 + 1


class Counters:
    """/metrics counters since the test began."""

    def __init__(self, s):
        self.s = s
        self.names = ("rosa_session_rollbacks_total", "rosa_session_rollback_rebuilds_total")
        self.base = [s.metric(n) for n in self.names]

    def __call__(self):
        return tuple(self.s.metric(n) - b for n, b in zip(self.names, self.base))


# ------------------------------------------------------------------ token ids, demo model

def test_rollback_token_prompts():
    """Extension, a late and an early divergence, the whole prompt already held, a prefix of
    it: each time the session is kept (cached_tokens = the shared prefix, the last prompt token
    fed again when the session holds all of it) and the answer is the fresh one."""
    s = Server()
    try:
        base = list(b"The passkey is 47123. " + b"XXXXX. " * 12 + b"The passkey is ")
        sid = "tok"
        fresh = {}
        assert_rollback_works(s)
        counters = Counters(s)

        def check(prompt, want_cached, n=8):
            key = bytes(prompt)
            if key not in fresh:
                fresh[key] = complete(s, prompt, n)
                assert cached(fresh[key]) == 0, fresh[key]["usage"]
            r = complete(s, prompt, n, sid)
            assert r["choices"][0]["token_ids"] == fresh[key]["choices"][0]["token_ids"], (
                len(prompt), r["choices"][0]["token_ids"])
            assert cached(r) == want_cached, (len(prompt), r["usage"], want_cached)
            return r["choices"][0]["token_ids"]

        out = check(base, 0)
        # held: base + out[:-1]; the next prompt extends it
        held = base + out[:-1]
        ext = held + list(b" and more")
        out = check(ext, len(held))
        held = ext + out[:-1]
        assert counters() == (0, 0)
        # diverges 5 tokens before the end of the prompt part: rolled back, not rebuilt
        late = ext[:-5] + list(b"other text")
        out = check(late, len(ext) - 5)
        held = late + out[:-1]
        # early: only the first 10 tokens shared (well inside the default horizon)
        early = base[:10] + list(b"a different story. The passkey is ")
        out = check(early, 10)
        held = early + out[:-1]
        # the same prompt again: all of it is held, its last token is fed again for logits
        out = check(early, len(early) - 1)
        # a prefix of what is held
        check(early[:20], 19)
        assert counters() == (4, 0), counters()
        # echo + logprobs still rebuild (the prefix's logits are not kept)
        r = complete(s, early[:20], 2, sid, echo=True, logprobs=0)
        assert cached(r) == 0, r["usage"]
        # a prompt of one token that the session starts with: nothing to roll back to
        r = complete(s, early[:1], 2, sid)
        assert cached(r) == 0 and r["choices"][0]["token_ids"] == complete(s, early[:1], 2)[
            "choices"][0]["token_ids"]
    finally:
        assert s.stop() == 0


def test_cached_tokens_n_and_stream():
    """cached_tokens in every usage: n > 1 forks (at most prompt_tokens), the final usage chunk
    of a stream, and the openai client's CompletionUsage.prompt_tokens_details."""
    s = Server()
    try:
        p = list(b"hello there, hello there, hello ")
        r = complete(s, p, 3, n=3)
        assert r["usage"]["prompt_tokens"] == len(p) and cached(r) == len(p), r["usage"]
        complete(s, p, 1, "st")  # holds p (a sampled token is fed by the next request)
        st, ev, done = s.stream("/v1/completions", {
            "prompt": p + list(b"again"), "max_tokens": 3, "stream": True, "session_id": "st",
            "stream_options": {"include_usage": True}, **GREEDY})
        assert st == 200 and done and ev[-1]["usage"]["prompt_tokens_details"] == {
            "cached_tokens": len(p)}, ev[-1]
        try:
            import openai
        except ImportError:
            print("  (openai not installed: client check skipped)")
            return
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="none")
        a = c.completions.create(model="rosa-copy-demo", prompt=p, max_tokens=1, temperature=0,
                                 extra_body={"session_id": "oa"})
        b = c.completions.create(model="rosa-copy-demo", prompt=p + [120, 121], max_tokens=2,
                                 temperature=0, extra_body={"session_id": "oa"})
        assert a.usage.prompt_tokens_details.cached_tokens == 0, a.usage
        assert b.usage.prompt_tokens_details.cached_tokens == len(p), b.usage
    finally:
        assert s.stop() == 0


def test_beyond_horizon_rebuilds():
    """--rollback-tokens H: a divergence more than H tokens back rebuilds the session (counted),
    one within H rolls back; the answers are the fresh ones either way."""
    s = Server("--rollback-tokens", "8")
    try:
        assert_rollback_works(s)
        counters = Counters(s)
        base = list(b"0123456789abcdefghijklmnopqrstuvwxyz 0123456789 ")
        complete(s, base, 4, "h")
        far = base[:20] + list(b"something else")
        want = complete(s, far, 4)["choices"][0]["token_ids"]
        r = complete(s, far, 4, "h")
        assert cached(r) == 0 and r["choices"][0]["token_ids"] == want, r
        assert counters() == (0, 1)
        near = far[:-3] + list(b"xyz")
        want = complete(s, near, 4)["choices"][0]["token_ids"]
        r = complete(s, near, 4, "h")
        assert cached(r) == len(far) - 3 and r["choices"][0]["token_ids"] == want, r
        assert counters() == (1, 1)
    finally:
        assert s.stop() == 0


# ------------------------------------------------------------------ chat, Qwen3 tokenizer

def chat_setup():
    sd = shared_dir()
    tok = sd and os.path.join(sd, "tokenizer", "qwen3", "tokenizer.json")
    if not tok or not os.path.exists(tok):
        return None
    try:
        import qwen3_random
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        return None
    d = tempfile.mkdtemp(prefix="rosa-q3-chat-")
    qwen3_random.write(d, hidden=32, layers=3, heads=4, kv_heads=2, head_dim=8, ffn=64,
                       rosa_layers=(1, 2), seed=5)
    return d, tok


USER = ["Tell me about suffix automata, briefly please.",
        "Why do they take linear space? Give one reason and an example of a string.",
        "Now compare that with a suffix array, in two sentences at most; be precise.",
        "Thanks. One more: how would you roll one back by a few characters?",
        "Summarise the conversation so far."]


def test_chat_turns_reuse_the_session():
    """Turn k + 1 sends the whole conversation with the previous answer: without the chat
    preparation the session rolls back to where the template rewrote the previous turn (the
    empty think block it drops) and keeps everything before it; every answer equals the answer
    of a fresh session."""
    setup = chat_setup()
    if not setup:
        print("  skip: no ../shared tokenizer or no numpy/safetensors")
        return
    d, tok = setup
    # window 16 < every prompt and every rollback (24 answer tokens + the think block): it must
    # restore what the window had dropped
    # --no-chat-prepare: the request itself rolls back (test_chat_prepare.py: with it)
    s = Server("--model", d, "--tokenizer", tok, "--window", "16", "--global-layers", "1",
               "--no-chat-prepare")
    try:
        try:
            import openai
        except ImportError:
            openai = None
        assert_rollback_works(s)
        counters = Counters(s)
        msgs = [{"role": "system", "content": "You are terse."}]
        prev_prompt = None
        for k, u in enumerate(USER):
            msgs.append({"role": "user", "content": u})
            body = {"messages": msgs, "max_tokens": 24, **GREEDY}
            st, fresh = s.post("/v1/chat/completions", body)
            assert st == 200, fresh
            if k == 3 and openai:  # this turn through the official client
                c = openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="none")
                o = c.chat.completions.create(model=c.models.list().data[0].id, messages=msgs,
                                              max_tokens=24, temperature=0,
                                              extra_body={"session_id": "chat",
                                                          "ignore_eos": True})
                got = {"content": o.choices[0].message.content,
                       "prompt_tokens": o.usage.prompt_tokens,
                       "cached": o.usage.prompt_tokens_details.cached_tokens}
            elif k == 4:  # and this one streamed, with the usage chunk
                st, ev, done = s.stream("/v1/chat/completions", {
                    **body, "session_id": "chat", "stream": True,
                    "stream_options": {"include_usage": True}})
                assert st == 200 and done
                got = {"content": "".join(c["delta"].get("content", "") for e in ev
                                          for c in e["choices"]),
                       "prompt_tokens": ev[-1]["usage"]["prompt_tokens"],
                       "cached": ev[-1]["usage"]["prompt_tokens_details"]["cached_tokens"]}
            else:
                st, r = s.post("/v1/chat/completions", {**body, "session_id": "chat"})
                assert st == 200, r
                assert r["choices"][0]["token_ids"] == fresh["choices"][0]["token_ids"], k
                got = {"content": r["choices"][0]["message"]["content"],
                       "prompt_tokens": r["usage"]["prompt_tokens"], "cached": cached(r)}
            answer = fresh["choices"][0]["message"]["content"]
            assert got["content"] == answer, (k, got, answer)
            assert got["prompt_tokens"] == fresh["usage"]["prompt_tokens"]
            assert cached(fresh) == 0
            if prev_prompt is None:
                assert got["cached"] == 0, got
            else:
                # everything up to the previous "<|im_start|>assistant\n" is reused: the
                # template dropped "<think>\n\n</think>\n\n" (4 tokens) after it, and the
                # answer's first token may merge with the newline before it
                assert prev_prompt - 6 <= got["cached"] <= prev_prompt - 4, (k, got, prev_prompt)
            prev_prompt = got["prompt_tokens"]
            msgs.append({"role": "assistant", "content": answer})
        n = len(USER) - 1
        assert counters() == (n, 0), counters()
        # a conversation that diverges early (another system prompt): rolled back to the
        # shared start, the answer still the fresh one
        other = [{"role": "system", "content": "You are verbose."}] + msgs[1:4]
        st, fresh = s.post("/v1/chat/completions", {"messages": other, "max_tokens": 24,
                                                     **GREEDY})
        st, r = s.post("/v1/chat/completions", {"messages": other, "max_tokens": 24,
                                                 "session_id": "chat", **GREEDY})
        assert r["choices"][0]["token_ids"] == fresh["choices"][0]["token_ids"]
        assert 0 < cached(r) < 8, r["usage"]
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(SERVER):
        print("rosa-server not built")
        sys.exit(77)
    run([test_rollback_token_prompts, test_cached_tokens_n_and_stream,
         test_beyond_horizon_rebuilds, test_chat_turns_reuse_the_session])
