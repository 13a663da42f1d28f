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
