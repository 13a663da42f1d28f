#!/usr/bin/env bash
# curl.sh: one curl line per endpoint of rosa-server (run the file, or copy single lines).
# ROSA_URL defaults to the local server; with --api-key set, export ROSA_API_KEY too.
# Lines marked "tokenizer" take text, so they need a model with a tokenizer.json (the built-in
# demo has one; builds before the engine's tokenizer answer them with 400).
set -euo pipefail
U=${ROSA_URL:-http://127.0.0.1:8080}
A=(-H "Authorization: Bearer ${ROSA_API_KEY:-none}" -H "Content-Type: application/json")

curl -s "$U/health"                                                   # liveness/readiness
curl -s "$U/metrics" | grep '^rosa_requests_total'                    # Prometheus text
curl -s "${A[@]}" "$U/v1/models"                                      # the served model
curl -s "${A[@]}" "$U/v1/models/rosa-copy-demo"                       # one model by id
curl -s "${A[@]}" "$U/v1/completions" -d '{"prompt": [84, 104, 101], "max_tokens": 4, "temperature": 0, "return_token_ids": true}'  # token ids
curl -s "${A[@]}" "$U/v1/completions" -d '{"prompt": "The passkey is 47123. XXXXX. XXXXX. The passkey is", "max_tokens": 6, "temperature": 0}'  # tokenizer
curl -sN "${A[@]}" "$U/v1/completions" -d '{"prompt": "Once upon a time", "max_tokens": 8, "stream": true}'  # tokenizer; SSE stream
curl -s "${A[@]}" "$U/v1/completions" -d '{"prompt": [84, 104, 101], "max_tokens": 0, "echo": true, "logprobs": 1}'  # prompt log-probabilities
curl -s "${A[@]}" "$U/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}'  # tokenizer
curl -sN "${A[@]}" "$U/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8, "stream": true}'  # tokenizer; SSE stream
curl -s "${A[@]}" "$U/tokenize" -d '{"prompt": "Hello world", "add_special_tokens": false}'  # tokenizer
curl -s "${A[@]}" "$U/detokenize" -d '{"tokens": [72, 105]}'         # tokenizer
curl -s "${A[@]}" -H "X-Session-Id: demo-1" "$U/v1/completions" -d '{"prompt": [84, 104, 101], "max_tokens": 4}'  # keep ROSA state as session demo-1
curl -s "${A[@]}" "$U/v1/sessions"                                    # kept sessions
curl -s "${A[@]}" -X DELETE "$U/v1/sessions/demo-1"                   # drop one
