#!/usr/bin/env bash
# run-fuzz.sh: build the fuzz targets with clang + libFuzzer + ASan/UBSan and run each for a while.
# Usage: tests/fuzz/run-fuzz.sh [SECONDS per target, default 60] [build dir, default build-fuzz]
# Needs clang with its libFuzzer runtime (Debian: apt-get install clang).  New crashing inputs land
# in the build dir (crash-*); interesting ones are added to a scratch copy of the seed corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
build=${2:-build-fuzz}
command -v clang >/dev/null || { echo "run-fuzz.sh: clang not found (apt-get install clang)" >&2; exit 2; }
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROSA_FUZZ=ON -DROSA_SANITIZE=ON -DROSA_CUDA=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target fuzz_tokenize fuzz_tokenizer_load fuzz_route_image
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in fuzz_tokenize fuzz_tokenizer_load fuzz_route_image; do
  work="$build/tests/fuzz/corpus-$t"
  mkdir -p "$work"
  extra=()
  [ "$t" = fuzz_tokenizer_load ] && extra=(tests/data/tokenizer/synthetic)
  echo "== $t for ${secs}s"
  (cd "$build" && "./tests/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=20 \
      -rss_limit_mb=4096 "../$work" "../tests/fuzz/corpus/$t" "${extra[@]/#/../}")
done
