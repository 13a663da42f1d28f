#!/usr/bin/env bash
# install-test-deps.sh: what the test suite needs beyond the build (run as root): Python 3 with
# pip, the official openai SDK (the server integration tests drive rosa-server with it), and
# numpy + safetensors (tests/server/qwen3_random.py writes a checkpoint for the Qwen3 tokenizer).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip
fi
for pkg in openai numpy safetensors; do
  if ! python3 -c "import $pkg" >/dev/null 2>&1; then
    python3 -m pip install -q "$pkg" 2>/dev/null || python3 -m pip install -q --break-system-packages "$pkg"
  fi
done
echo "install-test-deps: python3 $(python3 -c 'import openai, numpy, safetensors; print("openai", openai.__version__, "numpy", numpy.__version__, "safetensors", safetensors.__version__)')"
