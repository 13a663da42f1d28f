"""test_openai.py: the official openai Python SDK against a real rosa-server (demo model):
completions and chat with text, sync, async and streaming, n > 1, stop sequences, logprobs,
and errors raised as the SDK's exception types (also a timeout in the middle of a stream).  Exits 77 (skipped) when the openai package is missing."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import Server, run  # noqa: E402

try:
    import openai
except ImportError:
    if os.environ.get("CI") == "true":
        print("openai package not installed, but CI must run this test: failing")
        sys.exit(1)
    print("openai package not installed: skipped")
    sys.exit(77)

PASSKEY = "The passkey is 47123. " + "XXXXX. " * 200 + "The passkey is "
S = None


def client():
    return openai.OpenAI(base_url=f"http://127.0.0.1:{S.port}/v1", api_key="k", max_retries=0,
                         timeout=60)


def test_models():
    ms = client().models.list().data
    assert ms[0].id == "rosa-copy-demo"


def test_completion_token_ids():
    ids = list(PASSKEY.encode())
    r = client().completions.create(model="rosa-copy-demo", prompt=ids, max_tokens=6,
                                    temperature=0, extra_body={"return_token_ids": True})
    assert bytes(r.choices[0].model_extra["token_ids"][:5]) == b"47123"
    assert r.usage.prompt_tokens == len(ids) and r.choices[0].finish_reason == "length"


def test_models_details():
    m = client().models.list().data[0].model_extra
    assert m["tokenizer"] is True and m["attention_window"] == 2 and m["vocab_size"] == 256


def test_completion_text_stream_stop_logprobs():
    c = client()
    r = c.completions.create(model="rosa-copy-demo", prompt=PASSKEY, max_tokens=6, temperature=0)
    assert r.choices[0].text == "47123.", r.choices[0].text
    r = c.completions.create(model="rosa-copy-demo", prompt=PASSKEY, max_tokens=6, temperature=0,
                             stop=["23"], logprobs=2, n=2)
    assert [ch.text for ch in r.choices] == ["471", "471"] and r.choices[0].finish_reason == "stop"
    assert r.choices[1].finish_reason == "stop"
    lp = r.choices[0].logprobs
    assert lp.tokens[:3] == ["4", "7", "1"], lp.tokens
    assert len(lp.top_logprobs[0]) == 2 and "4" in lp.top_logprobs[0]
    chunks = [ch for ch in c.completions.create(model="rosa-copy-demo", prompt=PASSKEY,
                                                max_tokens=6, temperature=0, stream=True,
                                                logprobs=1) if ch.choices]
    assert "".join(ch.choices[0].text for ch in chunks) == "47123."
    for ch in chunks:
        if ch.choices[0].text:
            assert "".join(ch.choices[0].logprobs.tokens) == ch.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    # n = 2 streamed with sampling: both choices finish, seeds make them reproducible
    def sampled():
        out = ["", ""]
        for ch in c.completions.create(model="rosa-copy-demo", prompt=PASSKEY, max_tokens=8,
                                       temperature=1.5, n=2, seed=7, stream=True):
            for x in ch.choices:
                out[x.index] += x.text
        return out
    a = sampled()
    assert a == sampled() and all(len(x.encode("utf-8", "replace")) > 0 for x in a), a


CHAT = "A: assistant\nTHINK. B: </think>\n\nNOTHINK. "


def test_chat():
    c = client()
    msgs = [{"role": "user", "content": CHAT}]
    think = {"chat_template_kwargs": {"enable_thinking": True}}
    r = c.chat.completions.create(model="rosa-copy-demo", messages=msgs, max_tokens=7,
                                  temperature=0, logprobs=True, top_logprobs=2, n=2,
                                  extra_body=think)
    assert len(r.choices) == 2 and r.choices[0].message.role == "assistant"
    # the generation prompt ends "<|im_start|>assistant\n"; the copy model continues the message
    assert [ch.message.content for ch in r.choices] == ["THINK. ", "THINK. "], r
    assert [e.token for e in r.choices[0].logprobs.content] == list("THINK. ")
    assert len(r.choices[0].logprobs.content[0].top_logprobs) == 2
    assert r.usage.completion_tokens == 14 and r.id.startswith("chatcmpl-")
    chunks = list(c.chat.completions.create(model="rosa-copy-demo", messages=msgs, max_tokens=7,
                                            temperature=0, stream=True, extra_body=think,
                                            stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "THINK. "
    assert chunks[-1].usage.completion_tokens == 7
    r = c.chat.completions.create(model="rosa-copy-demo", messages=msgs, max_tokens=7,
                                  temperature=0, stop="K.", extra_body=think)
    assert r.choices[0].message.content == "THIN" and r.choices[0].finish_reason == "stop"


def test_errors():
    c = client()
    for kwargs, exc in (({"model": "nope", "prompt": [1]}, openai.NotFoundError),
                        ({"model": "rosa-copy-demo", "prompt": [1], "max_tokens": -5},
                         openai.BadRequestError),
                        ({"model": "rosa-copy-demo", "prompt": [1], "logprobs": 40},
                         openai.BadRequestError)):
        try:
            c.completions.create(**kwargs)
        except exc as e:
            assert e.body and "message" in e.body, e.body
        else:
            raise AssertionError(f"no {exc.__name__} for {kwargs}")
    bad = openai.OpenAI(base_url=f"http://127.0.0.1:{S.port}/v1", api_key="wrong", max_retries=0)
    # this server has no --api-key: any key is accepted; the 401 path is tested in test_api.py
    bad.models.list()


def test_timeout_errors_reach_the_sdk():
    """--request-timeout: the SDK raises for a plain request (503) and mid-stream (error event)."""
    t = Server("--request-timeout", "0.5")
    try:
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{t.port}/v1", api_key="k", max_retries=0,
                          timeout=60)
        body = dict(model="rosa-copy-demo", prompt=[1, 2, 3], max_tokens=30000,
                    extra_body={"ignore_eos": True})
        try:
            c.completions.create(**body)
        except openai.InternalServerError as e:
            assert e.status_code == 503 and "timed out" in str(e), e
        else:
            raise AssertionError("no InternalServerError")
        got = []
        try:
            for ch in c.completions.create(stream=True, **body):
                got.extend(ch.choices)
        except openai.APIError as e:
            assert "timed out" in str(e), e
        else:
            raise AssertionError("the stream ended without an error")
        assert got, "no chunks before the error"
    finally:
        assert t.stop() == 0


def test_async_concurrent():
    async def main():
        c = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{S.port}/v1", api_key="k",
                               max_retries=0, timeout=60)

        async def one(i):
            stream = await c.completions.create(model="rosa-copy-demo", prompt=[1, 2, 3 + i],
                                                max_tokens=8, stream=True, seed=i,
                                                extra_body={"ignore_eos": True})
            fins = [ch.choices[0].finish_reason async for ch in stream if ch.choices]
            return fins[-1]

        res = await asyncio.gather(*(one(i) for i in range(16)))
        await c.close()
        return res

    assert asyncio.run(main()) == ["length"] * 16


if __name__ == "__main__":
    S = Server()
    try:
        run.__globals__  # keep flake quiet
        tests = [test_models, test_models_details, test_completion_token_ids,
                 test_completion_text_stream_stop_logprobs, test_chat, test_errors,
                 test_timeout_errors_reach_the_sdk, test_async_concurrent]
        failed = 0
        for t in tests:
            try:
                t()
                print("ok  ", t.__name__)
            except Exception as e:
                import traceback
                traceback.print_exc()
                print("FAIL", t.__name__, e)
                failed += 1
    finally:
        rc = S.stop()
    sys.exit(1 if failed or rc else 0)
