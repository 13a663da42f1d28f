#!/usr/bin/env bash
# device-check.sh: the CUDA backend's whole check on a lent GPU machine, in one call of at most
# 8 minutes on a bare image (no C -dev packages, no ../shared, no network).  Run from anywhere;
# it works in the repository root.  See docs/CUDA.md, "The device check".
#
#   dev machine:  tests/gpu/prep-device-check.sh        (stages .devcheck/: debs, libs, golden)
#   device:       run(command='bash tests/gpu/device-check.sh', carry=['.devcheck'], timeout_s=480)
#
# Without an NVIDIA GPU it says so and exits 0 at once (CI runs it that way, ctest
# device_check_no_gpu).  With one, each step under `timeout`, capped by what is left of the
# budget (ROSA_DEVCHECK_BUDGET, default 440 s) minus what later, more important steps keep:
#   1  environment (GPU, driver, glibc, nvcc, cmake, compute-sanitizer)       -> 1_env_build.log
#   2  configure + build, CUDA sm_90 only, ptxas -v, from the staged deps    -> 1_env_build.log
#   3  GPU tests: test_kv_pool, test_gpu_budget, test_cuda_kernels (kernels vs CPU references),
#      test_backend_forward (CPU and CUDA, ntok 0), test_cuda_backend (scratch failure),
#      test_step_sample (ids sampled on the device), test_parity on cuda f32 (when the tree has it),
#      test_golden on cuda f32 (golden cases; if it fails, once more with ROSA_CUDA_ATTN=generic
#      ROSA_CUDA_HALVES=0: are the decode kernel or the two-half pipeline to blame?),
#      test_cuda_bf16 (agreement)                                           -> 2_tests.log
#   4  compute-sanitizer memcheck and racecheck on test_cuda_kernels        -> 3_sanitizer.log
#   5  benchmarks: bench decode --device cuda, 0.6b shape, window 2048, batch 1 and 32 (ROSA and
#      window only), then 1.7b batch 1, prefill 8k, memcheck on the golden f32 test: each only
#      while time is left                                                   -> 4_bench.log
# $OUT (default ./build-devcheck-out) gets summary.txt (read it first: one line per step with rc
# and seconds, test totals, bf16 agreement, sanitizer summaries, bench lines) and the 4 logs;
# the summary is also printed at the end.  Exit status: 0 when every step that ran passed.
# ROSA_DEVCHECK_BUILD_ONLY=1: no GPU needed; steps 1-2, then each test binary must start and
# skip (77): how tests/gpu/test-staged-build.sh proves the staged build on a machine without one.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
OUT=${OUT:-$REPO/build-devcheck-out}
mkdir -p "$OUT"
SUM=$OUT/summary.txt
BUILD_ONLY=${ROSA_DEVCHECK_BUILD_ONLY:-}

if [ -z "$BUILD_ONLY" ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; }; then
    echo "device-check: no NVIDIA GPU on this machine (nvidia-smi lists none): nothing to check, exiting 0" | tee "$SUM"
    exit 0
fi

T0=$(date +%s)
BUDGET=${ROSA_DEVCHECK_BUDGET:-440}
BUILD=${ROSA_DEVCHECK_BUILD:-$REPO/build-devcheck}
DC=$REPO/.devcheck
ENVL=$OUT/1_env_build.log TESTL=$OUT/2_tests.log SANL=$OUT/3_sanitizer.log BENCHL=$OUT/4_bench.log
: > "$SUM"
FAILED=0
log() { echo "[$(($(date +%s) - T0))s] $*" | tee -a "$SUM"; }
left() { echo $((BUDGET - ($(date +%s) - T0))); }
# step NAME LOG TIMEOUT RESERVE cmd...: run under timeout, capped so that RESERVE seconds stay
# for later steps; skipped when fewer than 15 s would remain.  rc 77 (skipped) counts as failed
# here: on a GPU machine with the staged golden cases nothing should skip.
step() {
    local name=$1 lf=$2 to=$3 res=$4
    shift 4
    local cap=$(($(left) - res))
    ((cap < to)) && to=$cap
    if ((to < 15)); then log "SKIP $name (no time left)"; return 99; fi
    printf '\n===== %s (timeout %ss) %s\n+ %s\n' "$name" "$to" "$(date -u +%T)" "$*" >> "$lf"
    local s
    s=$(date +%s)
    timeout -k 5 "$to" "$@" >> "$lf" 2>&1
    local rc=$?
    local note=
    [ $rc = 124 ] || [ $rc = 137 ] && note=" TIMEOUT"
    [ $rc = 77 ] && note=" SKIPPED(77)"
    log "$name rc=$rc $(($(date +%s) - s))s$note"
    [ $rc = 0 ] || FAILED=1
    return $rc
}
finish() {
    local f
    for f in "$ENVL" "$TESTL" "$SANL" "$BENCHL"; do
        [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 15000000 ] && truncate -s 15000000 "$f"
    done
    log "done in $(($(date +%s) - T0))s, $([ $FAILED = 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED')"
    echo "----- $SUM"
    cat "$SUM"
    exit $FAILED
}

# ---- 1: environment ----
command -v nvcc >/dev/null 2>&1 || export PATH=$PATH:/usr/local/cuda/bin
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
{
    echo "repo $(git rev-parse HEAD 2>/dev/null) $(git status --short 2>/dev/null | wc -l) changed files; nproc $(nproc)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,compute_mode --format=csv 2>&1
    ldd --version 2>&1 | head -1
    (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
    nvcc --version 2>&1 | tail -2
    cc --version 2>&1 | head -1
    cmake --version 2>&1 | head -1
    echo "ninja: $(command -v ninja || echo none); compute-sanitizer: ${CS:-none}"
    [ -f "$DC/MANIFEST" ] && head -2 "$DC/MANIFEST"
} >> "$ENVL" 2>&1
SHARED=
for s in "$DC/shared" "$REPO/shared" "$REPO/../shared"; do [ -d "$s/golden" ] && { SHARED=$(cd "$s" && pwd); break; }; done
log "env: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1) $(ldd --version 2>&1 | head -1 | grep -o '[0-9.]*$' | sed 's/^/glibc /'); sanitizer=${CS:-none}; golden=${SHARED:-MISSING}"

# ---- 2: build, sm_90 only, from the staged dependencies when staged ----
CMAKE_EXTRA=()
RUNENV=(env)
if [ -d "$DC/debs" ] && [ -z "${ROSA_DEVCHECK_SYSTEM_DEPS:-}" ]; then
    # shellcheck source=tests/gpu/staged-deps.sh
    . "$REPO/tests/gpu/staged-deps.sh"
    if staged_deps_setup "$DC" /tmp/rosa-devroot >> "$ENVL" 2>&1; then
        CMAKE_EXTRA=("${STAGED_CMAKE_ARGS[@]}")
        RUNENV=(env "LD_LIBRARY_PATH=$STAGED_RUN_LD_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
        log "deps: staged packages from .devcheck/debs"
    else
        log "deps: FAILED to set up .devcheck/debs (see 1_env_build.log)"
        FAILED=1
        finish
    fi
else
    log "deps: the system's (no .devcheck/debs)"
fi
GEN=()
command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD/Makefile" ] && GEN=(-G Ninja)
step configure "$ENVL" 120 330 cmake -S "$REPO" -B "$BUILD" "${GEN[@]}" -DROSA_CUDA=ON -DROSA_SERVER=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_FLAGS=-Xptxas=-v "${CMAKE_EXTRA[@]}" \
    || { log "FATAL: configure failed (1_env_build.log)"; finish; }
TARGETS=(test_kv_pool test_gpu_budget test_backend_forward test_step_sample test_cuda_kernels test_cuda_backend test_golden
         test_cuda_bf16 rosa-cli)
[ -f "$REPO/tests/test_parity.c" ] && TARGETS+=(test_parity) # transformers parity cases, where the tree has them
step build "$ENVL" 240 200 cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}" \
    || { log "FATAL: build failed (1_env_build.log)"; finish; }
# kernels that spill or use a stack frame: worth a look before any tuning
awk '/Function properties for/ {fn=$NF} /bytes stack frame/ {sf=$0; gsub(/^ +/, "", sf)}
     /Used [0-9]+ registers/ {u=$0; sub(/.*Used/, "Used", u); if (sf !~ /^0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads/) print "ptxas " fn ": " u "; " sf}' \
    "$ENVL" | sort -u | head -20 >> "$SUM"
T=$BUILD/tests
CLI=$BUILD/clients/rosa-cli

if [ -n "$BUILD_ONLY" ]; then
    # no GPU: every test binary must load its libraries and skip; rosa-cli must start
    for t in test_kv_pool test_gpu_budget test_backend_forward test_step_sample test_cuda_kernels test_cuda_backend test_cuda_bf16; do
        timeout 60 "$T/$t" >> "$TESTL" 2>&1
        rc=$?
        log "$t (no GPU) rc=$rc"
        [ $rc = 0 ] || [ $rc = 77 ] || FAILED=1
    done
    ROSA_SHARED=$SHARED ROSA_TEST_DEVICE=cuda timeout 60 "$T/test_golden" >> "$TESTL" 2>&1
    rc=$?
    log "test_golden cuda (no GPU) rc=$rc"
    [ $rc = 77 ] || FAILED=1
    "${RUNENV[@]}" "$CLI" --help >> "$TESTL" 2>&1
    rc=$?
    log "rosa-cli --help rc=$rc"
    [ $rc = 0 ] || FAILED=1
    finish
fi

# ---- 3: GPU tests ----
export CK_FORK=no CK_VERBOSITY=normal
[ -n "$SHARED" ] && export ROSA_SHARED=$SHARED
step test_kv_pool "$TESTL" 30 190 "$T/test_kv_pool"
step test_gpu_budget "$TESTL" 30 190 "$T/test_gpu_budget"
step test_cuda_kernels "$TESTL" 120 170 "$T/test_cuda_kernels"
step test_backend_forward "$TESTL" 60 160 "$T/test_backend_forward"
step test_cuda_backend "$TESTL" 60 150 "$T/test_cuda_backend"
step test_step_sample "$TESTL" 60 145 "$T/test_step_sample"
step test_cuda_golden_f32 "$TESTL" 150 140 env ROSA_TEST_DEVICE=cuda ROSA_TEST_PRECISION=f32 "$T/test_golden" ||
    # the decode kernel and the two-half ROSA pipeline are the newest code: without them?
    step test_cuda_golden_f32_without_new "$TESTL" 150 140 env ROSA_CUDA_ATTN=generic ROSA_CUDA_HALVES=0 \
        ROSA_TEST_DEVICE=cuda ROSA_TEST_PRECISION=f32 "$T/test_golden"
[ -x "$T/test_parity" ] && step test_cuda_parity_f32 "$TESTL" 90 125 env ROSA_TEST_DEVICE=cuda ROSA_TEST_PRECISION=f32 \
    "$T/test_parity"
step test_cuda_bf16 "$TESTL" 90 120 "$T/test_cuda_bf16"
grep -E "^[0-9]+%: Checks|^bf16 vs cpu|:F:|:E:" "$TESTL" | head -40 >> "$SUM"

# ---- 4: compute-sanitizer on the kernel test ----
if [ -n "$CS" ]; then
    SAN=("$CS" --error-exitcode 86 --print-limit 25)
    step memcheck "$SANL" 120 90 "${SAN[@]}" --tool memcheck "$T/test_cuda_kernels"
    step racecheck "$SANL" 150 60 "${SAN[@]}" --tool racecheck "$T/test_cuda_kernels"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid __|hazard" "$SANL" | sort | uniq -c | head -20 >> "$SUM"
else
    log "no compute-sanitizer found: memcheck and racecheck not run"
    FAILED=1
fi

# ---- 5: benchmarks (each: ROSA, then window only), then extras while time is left ----
export TMPDIR=/tmp/rosa-bench
mkdir -p "$TMPDIR"
B=("${RUNENV[@]}" "$CLI" bench decode --device cuda --window 2048 --gpu-memory 24)
step bench_0.6b_b1 "$BENCHL" 120 30 "${B[@]}" --shape 0.6b --batch 1 --tokens 64
step bench_0.6b_b32 "$BENCHL" 90 0 "${B[@]}" --shape 0.6b --batch 32 --tokens 32
step bench_1.7b_b1 "$BENCHL" 90 0 "${B[@]}" --shape 1.7b --batch 1 --tokens 64
step prefill_0.6b_8k "$BENCHL" 60 0 "${RUNENV[@]}" "$CLI" bench prefill --device cuda --window 2048 --gpu-memory 24 \
    --shape 0.6b --prompt 8192 --rosa-only
[ -n "$CS" ] && step memcheck_golden_f32 "$SANL" 150 0 env ROSA_TEST_DEVICE=cuda ROSA_TEST_PRECISION=f32 \
    "$CS" --error-exitcode 86 --print-limit 25 --tool memcheck "$T/test_golden"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu,memory.used --format=csv >> "$BENCHL" 2>&1
grep -E "^bench (decode|prefill|backend)" "$BENCHL" \
    | sed -E 's/ (layers|hidden|threads|weight_bytes_per_token|max_rss_mib|rosa_bytes)=[^ ]*//g' >> "$SUM"
finish
