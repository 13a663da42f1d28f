#!/usr/bin/env bash
# install-deps.sh: install what building and testing rosa-serve needs on a fresh Debian 12
# machine (run as root).  Used by .ci/run, the README and the Docker images.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config ninja-build git curl ca-certificates python3
      libmicrohttpd-dev libcjson-dev libuv1-dev check libpcre2-dev libutf8proc-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all build dependencies present"
# The CUDA backend is optional (cmake -DROSA_CUDA=AUTO builds it when a toolkit is found; see
# docs/CUDA.md).  Debian ships no current CUDA toolkit, so it is not installed here.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: CUDA toolkit found ($(command -v nvcc || echo /usr/local/cuda/bin/nvcc)): the CUDA backend will be built"
else
  echo "install-deps: no CUDA toolkit: building without the CUDA backend"
fi
