#!/usr/bin/env bash
# run-all.sh: the whole test suite, as CI runs it: a warnings-as-errors build with
# AddressSanitizer + UBSan (through deploy/build.sh, the script the Docker images use), then
# every ctest test.  Usage: tests/run-all.sh [build-dir]
# The CUDA backend is built too when a toolkit is found (ROSA_CUDA=AUTO; set ROSA_CUDA=OFF or
# ON in the environment to force): its C host code is sanitized, the nvcc-compiled kernels are
# not, and the GPU tests skip (77) on machines without a device.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
jobs=$(nproc 2>/dev/null || echo 2)
ROSA_BUILD_TYPE=RelWithDebInfo ROSA_BUILD_TARGETS=all ROSA_CUDA=${ROSA_CUDA:-AUTO} \
  deploy/build.sh "$build" -DROSA_WERROR=ON -DROSA_SANITIZE=ON
# Brief coverage-guided fuzzing of the tokenizer targets (libFuzzer, clang), when clang is
# installed (deploy/install-test-deps.sh installs it): ROSA_FUZZ_SECONDS per target, 0 to skip.
fuzz_secs=${ROSA_FUZZ_SECONDS:-15}
if [ "$fuzz_secs" -gt 0 ] && command -v clang >/dev/null 2>&1; then
  if ! tests/fuzz/run-fuzz.sh "$fuzz_secs" "${build}-fuzz" > "${build}-fuzz.log" 2>&1; then
    tail -n 60 "${build}-fuzz.log"
    echo "run-all.sh: fuzzing failed or found a problem (log: ${build}-fuzz.log)"
    exit 1
  fi
  grep -E "^== |^Done " "${build}-fuzz.log" || true
fi
# protect_shadow_gap=0: the CUDA driver maps memory where ASan would otherwise protect
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:protect_shadow_gap=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs"
