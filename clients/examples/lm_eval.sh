#!/usr/bin/env bash
# lm_eval.sh: lm-evaluation-harness against rosa-server's /v1/completions (pip install
# "lm_eval[api]").  Log-likelihood tasks send token ids (tokenized_requests=True) with
# echo + logprobs, which rosa-server answers with the prompt's log-probabilities; the tokenizer
# named here must be the model's own (a Hugging Face directory or hub id).
#   ROSA_URL=http://127.0.0.1:8080 MODEL_ID=Qwen3-0.6B TOKENIZER=/models/Qwen3-0.6B \
#     clients/examples/lm_eval.sh lambada_openai,hellaswag
set -euo pipefail
U=${ROSA_URL:-http://127.0.0.1:8080}
lm_eval --model local-completions \
  --tasks "${1:-lambada_openai}" \
  --model_args "model=${MODEL_ID:-rosa-copy-demo},base_url=$U/v1/completions,tokenizer_backend=huggingface,tokenizer=${TOKENIZER:?set TOKENIZER to the model directory},tokenized_requests=True,num_concurrent=4,max_retries=3" \
  --batch_size 16 \
  --output_path "${OUT:-lm_eval_results}"
