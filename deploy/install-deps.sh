#!/usr/bin/env bash
# install-deps.sh: install what building rosa-serve needs on a fresh Debian 12 (or Ubuntu 22.04)
# machine, as root.  Used by .ci/run, the README and both Docker images.
#   deploy/install-deps.sh            build dependencies (compilers, -dev packages)
#   deploy/install-deps.sh --runtime  only the shared libraries rosa-server and rosa-cli load
#                                     (the runtime stage of the Docker images), plus curl for
#                                     the health check
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "${1:-}" = "--runtime" ]; then
  pkgs=(ca-certificates curl libmicrohttpd12 libcjson1 libuv1 libpcre2-8-0 libutf8proc2 libcurl4
        libstdc++6)
else
  pkgs=(build-essential cmake pkg-config ninja-build git curl ca-certificates python3
        libmicrohttpd-dev libcjson-dev libuv1-dev check libpcre2-dev libutf8proc-dev
        libcurl4-openssl-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${1:+runtime }dependencies present"
# The CUDA backend is optional (cmake -DROSA_CUDA=AUTO builds it when a toolkit is found; see
# docs/CUDA.md).  Debian ships no current CUDA toolkit, so it is not installed here (the CUDA
# Docker image starts from NVIDIA's devel / runtime images, which carry it).
if [ "${1:-}" != "--runtime" ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "install-deps: CUDA toolkit found ($(command -v nvcc || echo /usr/local/cuda/bin/nvcc)): the CUDA backend will be built"
  else
    echo "install-deps: no CUDA toolkit: building without the CUDA backend"
  fi
fi
