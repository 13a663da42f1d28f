#!/usr/bin/env bash
# docker-entrypoint.sh: start rosa-server in a container, configured by environment variables
# (ROSA_X_Y maps to the flag --x-y, and ROSA_BITS / ROSA_MODE to the run options --rosa-bits /
# --rosa-mode without repeating "rosa"; flags given to `docker run IMAGE ...` come after them
# and win).  The API key is read by rosa-server itself from ROSA_API_KEY, so it never
# appears on a command line.
#   ROSA_MODEL ROSA_ADAPTER ROSA_TOKENIZER ROSA_MODEL_NAME ROSA_DEVICE (cpu|cuda) ROSA_PRECISION
#   ROSA_GPU_MEMORY ROSA_WINDOW ROSA_GLOBAL_LAYERS ROSA_ROLLBACK_TOKENS
#   ROSA_BITS ROSA_MODE (post_attn|pre_attn) ROSA_THREADS ROSA_HOST (0.0.0.0) ROSA_PORT (8080)
#   ROSA_MAX_BATCH ROSA_MAX_QUEUE ROSA_MAX_PROMPT_TOKENS ROSA_MAX_TOKENS ROSA_MAX_SESSION_BYTES
#   ROSA_SESSION_TTL ROSA_REQUEST_TIMEOUT ROSA_REPLICA_ID ROSA_LOG_FORMAT (json) ROSA_CACHE_DIR
#   ROSA_NO_ROSA=1   ROSA_VERBOSE=1
set -euo pipefail
# renamed variables are refused, not ignored (a silently different model is worse than no start)
for pair in ROSA_BITS_PER_ROUTE:ROSA_BITS ROSA_INJECT_MODE:ROSA_MODE; do
  old=${pair%%:*}
  if [ -n "${!old:-}" ]; then
    echo "docker-entrypoint: $old was renamed: use ${pair#*:}" >&2
    exit 2
  fi
done
args=(--host "${ROSA_HOST:-0.0.0.0}" --port "${ROSA_PORT:-8080}"
      --log-format "${ROSA_LOG_FORMAT:-json}")
flag() { # flag ENV_NAME --flag
  local v=${!1:-}
  if [ -n "$v" ]; then args+=("$2" "$v"); fi
}
flag ROSA_MODEL --model
flag ROSA_ADAPTER --adapter
flag ROSA_TOKENIZER --tokenizer
flag ROSA_MODEL_NAME --model-name
flag ROSA_DEVICE --device
flag ROSA_PRECISION --precision
flag ROSA_GPU_MEMORY --gpu-memory
flag ROSA_WINDOW --window
flag ROSA_GLOBAL_LAYERS --global-layers
flag ROSA_ROLLBACK_TOKENS --rollback-tokens
flag ROSA_BITS --rosa-bits
flag ROSA_MODE --rosa-mode
flag ROSA_THREADS --threads
flag ROSA_MAX_BATCH --max-batch
flag ROSA_MAX_QUEUE --max-queue
flag ROSA_MAX_PROMPT_TOKENS --max-prompt-tokens
flag ROSA_MAX_TOKENS --max-tokens
flag ROSA_MAX_SESSION_BYTES --max-session-bytes
flag ROSA_SESSION_TTL --session-ttl
flag ROSA_REQUEST_TIMEOUT --request-timeout
flag ROSA_REPLICA_ID --replica-id
flag ROSA_CACHE_DIR --cache-dir
if [ "${ROSA_NO_ROSA:-0}" = 1 ]; then args+=(--no-rosa); fi
if [ "${ROSA_VERBOSE:-0}" = 1 ]; then args+=(--verbose); fi
exec "${ROSA_SERVER_BIN:-rosa-server}" "${args[@]}" "$@"
