#!/usr/bin/env python3
"""openai_sdk.py: rosa-server through the official OpenAI Python SDK (pip install openai).
ROSA_URL (default http://127.0.0.1:8080) and ROSA_API_KEY select the server.  Text prompts need
a model with a tokenizer; token-id prompts always work (the demo's ids are byte values)."""
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ.get("ROSA_URL", "http://127.0.0.1:8080") + "/v1",
                api_key=os.environ.get("ROSA_API_KEY", "none"))
model = client.models.list().data[0].id
print("model:", model)

# token ids (no tokenizer needed): the demo recalls the passkey through ROSA alone
ids = list(b"The passkey is 47123. " + b"XXXXX. " * 300 + b"The passkey is ")
r = client.completions.create(model=model, prompt=ids, max_tokens=6, temperature=0,
                              extra_body={"return_token_ids": True})
print("token ids ->", bytes(r.choices[0].token_ids[:5]))

# a kept ROSA session: the next request extends the prompt, only the new tokens are computed
r = client.completions.create(model=model, prompt=ids[:100], max_tokens=4, temperature=0,
                              extra_headers={"X-Session-Id": "sdk-demo"})
print("session usage:", r.usage.prompt_tokens, "prompt tokens")

if getattr(client.models.list().data[0], "tokenizer", None):
    # streamed text completion and chat (need the tokenizer)
    for chunk in client.completions.create(model=model, prompt="The passkey is 47123. XXXXX. "
                                           "XXXXX. The passkey is", max_tokens=6, temperature=0,
                                           stream=True):
        print(chunk.choices[0].text, end="", flush=True)
    print()
    chat = client.chat.completions.create(model=model, max_tokens=8, messages=[
        {"role": "user", "content": "Hello"}])
    print("chat:", repr(chat.choices[0].message.content))
else:
    print("no tokenizer on this server: text prompts skipped")
