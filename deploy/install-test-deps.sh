#!/usr/bin/env bash
# install-test-deps.sh: what the test suite needs beyond the build (run as root): nginx (the
# session-affinity router test), Python 3 with pip, the official openai SDK (server integration
# tests), PyYAML (manifest checks), and numpy + safetensors (tests/server/qwen3_random.py writes
# a checkpoint for the real Qwen3 tokenizer), clang with its libFuzzer runtime (the brief
# coverage-guided fuzzing of tests/fuzz/run-fuzz.sh that tests/run-all.sh runs).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt_missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx-light)
python3 -m pip --version >/dev/null 2>&1 || apt_missing+=(python3-pip)
command -v clang >/dev/null 2>&1 || apt_missing+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" ||
  apt_missing+=(libclang-rt-14-dev)
if [ ${#apt_missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
fi
# the package's own nginx service is not wanted (tests start their own on loopback ports)
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
elif [ -x /etc/init.d/nginx ] && /etc/init.d/nginx status >/dev/null 2>&1; then
  /etc/init.d/nginx stop >/dev/null 2>&1 || true
fi
pip_missing=()
python3 -c "import openai" >/dev/null 2>&1 || pip_missing+=(openai)
python3 -c "import yaml" >/dev/null 2>&1 || pip_missing+=(pyyaml)
python3 -c "import numpy" >/dev/null 2>&1 || pip_missing+=(numpy)
python3 -c "import safetensors" >/dev/null 2>&1 || pip_missing+=(safetensors)
if [ ${#pip_missing[@]} -gt 0 ]; then
  python3 -m pip install -q "${pip_missing[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${pip_missing[@]}"
fi
echo "install-test-deps: $(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1)," \
     "python3 $(python3 -c 'import openai, yaml, numpy, safetensors; print("openai", openai.__version__, "pyyaml", yaml.__version__, "numpy", numpy.__version__, "safetensors", safetensors.__version__)')"
