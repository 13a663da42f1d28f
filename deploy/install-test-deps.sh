#!/usr/bin/env bash
# install-test-deps.sh: what the test suite needs beyond the build (run as root): Python 3 with
# pip and the official openai SDK (the server integration tests drive rosa-server with it).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip
fi
if ! python3 -c "import openai" >/dev/null 2>&1; then
  python3 -m pip install -q openai 2>/dev/null || python3 -m pip install -q --break-system-packages openai
fi
echo "install-test-deps: python3 $(python3 -c 'import openai; print("openai", openai.__version__)')"
