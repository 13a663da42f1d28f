"""test_chat_prepare.py: after a chat turn with a session_id the server, while idle, feeds the
session its answer as the next turn's prompt renders it (server/chat_prepare.c), so that turn k
reuses everything up to the previous answer's <|im_end|>\\n: cached_tokens is exactly the prompt
less its last user turn and generation prompt.  Answers stay those of a fresh request; a client
that edits history gets exact answers too; a request that comes before the preparation ran
abandons it (counted); --no-chat-prepare keeps the old counts.  Real rosa-server over loopback,
a small random ROSA checkpoint with the real Qwen3 tokenizer (test_session_rollback's)."""
import json
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import SERVER, Server, run  # noqa: E402
from test_session_rollback import USER, cached, chat_setup  # noqa: E402

GREEDY = {"temperature": 0, "return_token_ids": True}
TAIL = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


class Counters:
    NAMES = ("rosa_session_prepared_tokens_total", "rosa_session_preparations_total",
             "rosa_session_preparations_abandoned_total", "rosa_session_rollbacks_total")

    def __init__(self, s):
        self.s = s
        self.base = [s.metric(n) for n in self.NAMES]
        assert None not in self.base, self.base

    def __call__(self):
        return tuple(int(self.s.metric(n) - b) for n, b in zip(self.NAMES, self.base))

    def wait(self, i, want, timeout=30):
        """Until counter i reaches want (the preparation runs after the response)."""
        t = time.time() + timeout
        while self()[i] < want and time.time() < t:
            time.sleep(0.02)
        assert self()[i] == want, (self.NAMES[i], self(), want)


def last_turn_tokens(s, user, tail=TAIL):
    """Tokens of the prompt after the conversation so far: the last user turn and the
    generation prompt (begins with a special token, so it tokenizes alone as in context)."""
    st, r = s.post("/tokenize", {"prompt": "<|im_start|>user\n" + user + tail})
    assert st == 200, r
    return r["count"]


def chat(s, msgs, sid=None, max_tokens=24, **extra):
    body = {"messages": msgs, "max_tokens": max_tokens, **GREEDY, **extra}
    if sid:
        body["session_id"] = sid
    st, r = s.post("/v1/chat/completions", body)
    assert st == 200, r
    return r


def start(*args):
    setup = chat_setup()
    if not setup:
        print("  skip: no ../shared tokenizer or no numpy/safetensors")
        return None, None, None
    d, tok = setup
    # window 16: the preparation's rollback and feed cross the window
    return Server("--model", d, "--tokenizer", tok, "--window", "16", "--global-layers", "1",
                  *args), d, tok


def test_turns_reuse_the_answer():
    """Each turn reuses the whole conversation before its last user message (previous answer
    included), exactly; answers equal fresh ones; the next request needs no rollback."""
    s, d, _ = start()
    if not s:
        return
    try:
        c = Counters(s)
        msgs = [{"role": "system", "content": "You are terse."}]
        prev = None
        prepared = 0
        least = 0  # what the preparations must have fed at least: every answer + <|im_end|>\n
        for k, u in enumerate(USER):
            msgs.append({"role": "user", "content": u})
            fresh = chat(s, msgs, ignore_eos=k % 2 == 0)  # length and (maybe) stop endings
            r = chat(s, msgs, "c", ignore_eos=k % 2 == 0)
            assert r["choices"][0]["token_ids"] == fresh["choices"][0]["token_ids"], k
            answer = r["choices"][0]["message"]["content"]
            assert answer == fresh["choices"][0]["message"]["content"]
            p = r["usage"]["prompt_tokens"]
            if prev is None:
                assert cached(r) == 0
            else:
                want = p - last_turn_tokens(s, u)
                assert cached(r) == want, (k, r["usage"], want)
                # the previous prompt, less its think block (4 tokens), and the whole answer in
                # canonical form with its <|im_end|>\n are in it (the answer's first token may
                # merge with the newline before it)
                assert cached(r) >= prev[0] - 4 + prev[1] + 2 - 1, (k, cached(r), prev)
            st, t = s.post("/tokenize", {"prompt": answer, "add_special_tokens": False})
            prev = (p, t["count"])
            least += t["count"] + 1
            c.wait(1, k + 1)
            prepared = c()[0]
            msgs.append({"role": "assistant", "content": answer})
        assert prepared >= least, (c(), least)
        prep, done, abandoned, rollbacks = c()
        assert (done, abandoned) == (len(USER), 0), c()
        # the requests never had to roll back: the preparation did (and is not counted there)
        assert rollbacks == 0, c()
        # the session lists the prepared tokens: conversation + last answer + <|im_end|>\n
        st, data = s.get("/v1/sessions")
        held = {x["id"]: x["tokens"] for x in json.loads(data)["data"]}
        assert held["c"] >= prev[0] - 4 + prev[1] + 1, (held, prev)
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


def test_thinking_and_special_tokens_modes():
    """With thinking on (no empty think block after the generation prompt) and with
    --chat-special-tokens (the other rendering and tokenizing path): the same exact reuse."""
    for args, extra, tail in (((), {"chat_template_kwargs": {"enable_thinking": True}},
                               "<|im_end|>\n<|im_start|>assistant\n"),
                              (("--chat-special-tokens",), {}, TAIL)):
        s, d, _ = start(*args)
        if not s:
            return
        try:
            c = Counters(s)
            msgs = [{"role": "user", "content": USER[0]}]
            for k, u in enumerate(USER[1:4]):
                r = chat(s, msgs, "m", **extra)
                assert r["choices"][0]["token_ids"] == chat(s, msgs, **extra)["choices"][0][
                    "token_ids"], (args, k)
                if k:
                    want = r["usage"]["prompt_tokens"] - last_turn_tokens(s, msgs[-1]["content"],
                                                                          tail)
                    assert cached(r) == want, (args, k, r["usage"], want)
                c.wait(1, k + 1)
                msgs += [{"role": "assistant", "content": r["choices"][0]["message"]["content"]},
                         {"role": "user", "content": u}]
        finally:
            assert s.stop() == 0
            shutil.rmtree(d, ignore_errors=True)


def test_edited_history_and_stream():
    """The client edits the previous answer, or sends it with other whitespace, or streams:
    the request's rollback takes over, answers stay exact."""
    s, d, _ = start()
    if not s:
        return
    try:
        c = Counters(s)
        msgs = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": USER[0]}]
        r = chat(s, msgs, "e")
        c.wait(1, 1)
        edits = [r["choices"][0]["message"]["content"] + " (edited)",
                 "  " + r["choices"][0]["message"]["content"] + "\n",
                 "something else entirely"]
        for i, a in enumerate(edits):
            m = msgs + [{"role": "assistant", "content": a},
                        {"role": "user", "content": USER[1 + i]}]
            fresh = chat(s, m)
            got = chat(s, m, "e")
            assert got["choices"][0]["token_ids"] == fresh["choices"][0]["token_ids"], i
            # at least the conversation before the edited answer is kept
            assert 0 < cached(got) <= got["usage"]["prompt_tokens"] - last_turn_tokens(
                s, USER[1 + i]), (i, got["usage"])
            c.wait(1, 2 + i)
            msgs_next = m + [{"role": "assistant",
                              "content": got["choices"][0]["message"]["content"]}]
        # streamed turn: the same preparation (the streamed text is the answer)
        u = USER[4]
        m = msgs_next + [{"role": "user", "content": u}]
        fresh = chat(s, m)
        st, ev, done = s.stream("/v1/chat/completions", {
            "messages": m, "max_tokens": 24, "session_id": "e", "stream": True,
            "stream_options": {"include_usage": True}, **GREEDY})
        assert st == 200 and done
        text = "".join(ch["delta"].get("content", "") for e in ev for ch in e["choices"])
        assert text == fresh["choices"][0]["message"]["content"]
        usage = ev[-1]["usage"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == (
            usage["prompt_tokens"] - last_turn_tokens(s, u)), usage
        c.wait(1, 5)
        assert c()[2] == 0, c()
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


def test_request_first_abandons():
    """While other work runs the preparation waits (lowest priority); the session's next
    request, arriving first, is answered as without it and the preparation is abandoned."""
    s, d, _ = start()
    if not s:
        return
    try:
        c = Counters(s)
        done = {}

        def busy():  # a long generation on another sequence keeps the engine from idling
            done["r"] = s.post("/v1/completions", {"prompt": list(range(10, 40)),
                                                   "max_tokens": 1000, "ignore_eos": True,
                                                   "temperature": 0})
        t = threading.Thread(target=busy)
        t.start()
        deadline = time.time() + 10
        while s.metric("rosa_running_requests") < 1 and time.time() < deadline:
            time.sleep(0.01)
        msgs = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": USER[0]}]
        r1 = chat(s, msgs, "a")
        m2 = msgs + [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
                     {"role": "user", "content": USER[1]}]
        r2 = chat(s, m2, "a")
        still_busy = t.is_alive()
        t.join()
        assert done["r"][0] == 200, done["r"]
        if not still_busy:
            print("  (the long request ended before turn 2: abandonment not exercised)")
            return
        # turn 2 found the session as turn 1 left it: the think block and answer recomputed
        p1 = r1["usage"]["prompt_tokens"]
        assert p1 - 6 <= cached(r2) <= p1 - 4, (r1["usage"], r2["usage"])
        fresh = chat(s, m2)
        assert r2["choices"][0]["token_ids"] == fresh["choices"][0]["token_ids"]
        # turn 1's preparation never ran; turn 2's runs once the engine is idle
        c.wait(1, 1)
        assert c()[2] == 1, c()
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


def test_next_turn_right_away():
    """Each turn sent as soon as the previous answer is in: the preparation (200-token answers,
    several slices) races with it, and is done, abandoned before it began or between two
    slices.  Whichever: exact answers, cached_tokens between the request-time rollback's count
    and the whole conversation before the last user turn, every preparation accounted for.
    --prefill-chunk 1 makes the slices 1 token: the preparation takes many engine iterations."""
    s, d, _ = start("--prefill-chunk", "1")
    if not s:
        return
    try:
        c = Counters(s)
        msgs = [{"role": "system", "content": "You are terse."}]
        prev = None
        seen = []
        for k, u in enumerate(USER[:4]):
            msgs.append({"role": "user", "content": u})
            r = chat(s, msgs, "r", max_tokens=200, ignore_eos=True)
            seen.append((list(msgs), r["choices"][0]["token_ids"]))
            p = r["usage"]["prompt_tokens"]
            if prev is not None:
                assert prev - 6 <= cached(r) <= p - last_turn_tokens(s, u), (k, r["usage"])
            prev = p
            msgs.append({"role": "assistant", "content": r["choices"][0]["message"]["content"]})
        deadline = time.time() + 30
        while c()[1] + c()[2] < 4 and time.time() < deadline:
            time.sleep(0.02)
        for k, (m, ids) in enumerate(seen):  # afterwards: the chat ran back to back
            assert chat(s, m, max_tokens=200, ignore_eos=True)["choices"][0]["token_ids"] == ids, k
        print("  prepared %d tokens, %d done, %d abandoned" % c()[:3])
        assert c()[1] + c()[2] == 4, c()
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


def test_no_chat_prepare():
    """--no-chat-prepare: nothing is fed ahead; turn 2 reuses the previous prompt less the
    think block (the old counts)."""
    s, d, _ = start("--no-chat-prepare")
    if not s:
        return
    try:
        c = Counters(s)
        msgs = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": USER[0]}]
        r1 = chat(s, msgs, "n")
        time.sleep(0.3)
        m2 = msgs + [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
                     {"role": "user", "content": USER[1]}]
        r2 = chat(s, m2, "n")
        p1 = r1["usage"]["prompt_tokens"]
        assert p1 - 6 <= cached(r2) <= p1 - 4, (r1["usage"], r2["usage"])
        time.sleep(0.3)
        assert c()[:3] == (0, 0, 0) and c()[3] == 1, c()
    finally:
        assert s.stop() == 0
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(SERVER):
        print("rosa-server not built")
        sys.exit(77)
    run([test_turns_reuse_the_answer, test_thinking_and_special_tokens_modes,
         test_edited_history_and_stream,
         test_request_first_abandons, test_next_turn_right_away, test_no_chat_prepare])
