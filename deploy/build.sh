#!/usr/bin/env bash
# build.sh: configure and build rosa-serve; used by the README, tests/run-all.sh (CI) and both
# Docker images, so the images build the way CI does.
#   deploy/build.sh [BUILD_DIR] [CMAKE_ARGS...]       (BUILD_DIR defaults to build)
# Environment:
#   ROSA_BUILD_TYPE     CMake build type (default Release)
#   ROSA_CUDA           ON | OFF | AUTO (default AUTO): passed as -DROSA_CUDA
#   ROSA_BUILD_TARGETS  "all", or targets to build (default: rosa-server rosa-cli)
#   ROSA_PREFIX         when set, install rosa-server and rosa-cli into $ROSA_PREFIX/bin
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="${ROSA_BUILD_TYPE:-Release}" \
      -DROSA_CUDA="${ROSA_CUDA:-AUTO}" "$@" >/dev/null
targets=${ROSA_BUILD_TARGETS:-rosa-server rosa-cli}
if [ "$targets" = all ]; then
  cmake --build "$build" -j "$jobs"
else
  # shellcheck disable=SC2086 # a list of target names
  cmake --build "$build" -j "$jobs" --target $targets
fi
if [ -n "${ROSA_PREFIX:-}" ]; then
  install -D -m 0755 "$build/server/rosa-server" "$ROSA_PREFIX/bin/rosa-server"
  install -D -m 0755 "$build/clients/rosa-cli" "$ROSA_PREFIX/bin/rosa-cli"
fi
echo "build: $build/server/rosa-server and $build/clients/rosa-cli are built"
