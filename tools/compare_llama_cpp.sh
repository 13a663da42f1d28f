#!/usr/bin/env bash
# Side-by-side CPU comparison of rosa-serve against llama.cpp on the same checkpoint (issue 15).
#
# usage: tools/compare_llama_cpp.sh [options]
#   --work DIR        scratch folder for the peer's download, build and the GGUF
#                     (default ${TMPDIR:-/tmp}/rosa-compare-llama; reused when run again)
#   --llama-src DIR   use this extracted llama.cpp tree instead of downloading the
#                     llama-cpp-python sdist from PyPI (its vendor/llama.cpp)
#   --llp-version V   llama-cpp-python version to download (default: newest on PyPI)
#   --model DIR       Qwen3 safetensors checkpoint (default: the random Qwen3-0.6B-shaped bf16
#                     checkpoint that `rosa-cli bench` writes to ${TMPDIR:-/tmp}/rosa-bench-qwen3-0.6b)
#   --tokenizer DIR   folder with the Qwen3 tokenizer.json (+ tokenizer_config.json) for the GGUF
#                     (default /work/shared/tokenizer/qwen3)
#   --rosa-cli PATH   rosa-cli binary (default build-rel/clients/rosa-cli of this checkout)
#   --pairs N         interleaved rounds (default 3)      --threads T   (default 2)
#   --prompt N        prefill length and decode context (default 512)
#   --gen N           decoded tokens (default 64)
#   --precisions L    rosa precisions, comma separated (default f32,bf16)
#   --jobs J          build parallelism for the peer (default 2)
# Environment: PAIRS, THREADS, PROMPT, GEN, WORK give the same defaults.
#
# What it does: downloads llama-cpp-python's source distribution (pip download, PyPI) into the
# work folder, builds only llama-bench from its vendored llama.cpp (Release, GGML_NATIVE=ON, nice),
# writes a bf16 GGUF of the checkpoint with tools/qwen3_to_gguf.py (llama.cpp's gguf-py, no
# torch), checks that llama-bench loads it, then runs interleaved rounds: each round is
#   prefill: llama-bench -p PROMPT -n 0 -r 1, then rosa-cli bench prefill per precision
#   decode:  llama-bench -p 0 -n GEN -d PROMPT -r 1, then rosa-cli bench decode per precision
# (rosa with --no-rosa-run --window 4096: plain Qwen3, nothing windowed at 512 tokens), and prints
# every measurement, the ratio rosa/llama.cpp of each round and the median ratios.
# Nothing of the peer is written into this repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
WORK=${WORK:-${TMPDIR:-/tmp}/rosa-compare-llama}
PAIRS=${PAIRS:-3}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-512}
GEN=${GEN:-64}
PRECISIONS=f32,bf16
LLAMA_SRC=
LLP_VERSION=
MODEL=
TOKENIZER=/work/shared/tokenizer/qwen3
ROSA_CLI=$repo/build-rel/clients/rosa-cli
JOBS=2

die() { echo "compare_llama_cpp: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --llama-src) LLAMA_SRC=$2; shift 2 ;;
        --llp-version) LLP_VERSION=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --tokenizer) TOKENIZER=$2; shift 2 ;;
        --rosa-cli) ROSA_CLI=$2; shift 2 ;;
        --pairs) PAIRS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --prompt) PROMPT=$2; shift 2 ;;
        --gen) GEN=$2; shift 2 ;;
        --precisions) PRECISIONS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
IFS=, read -r -a PRECS <<< "$PRECISIONS"
[ -x "$ROSA_CLI" ] || die "no rosa-cli at $ROSA_CLI (build it: cmake --build build-rel --target rosa-cli)"
[ -f "$TOKENIZER/tokenizer.json" ] || die "no tokenizer.json in $TOKENIZER (--tokenizer DIR)"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/logs
mkdir -p "$LOG"

# ---- the machine ----------------------------------------------------------------------------
echo "== machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
echo "cores online: $(nproc); threads used by both engines: $THREADS"
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
for f in avx512f avx512_bf16 amx_bf16 amx_tile; do
    if grep -qw "$f" <<< "$flags"; then echo "flag $f: yes"; else echo "flag $f: no"; fi
done
echo "load average (start): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "note: this machine may be shared with other jobs; a load average near or above the core"
echo "      count makes every number below noisy. Pairs are interleaved so both engines see"
echo "      similar load; the timed runs are not niced."
if python3 -c "import sys; sys.exit(0 if float(open('/proc/loadavg').read().split()[0]) + $THREADS > $(nproc) else 1)"; then
    echo "warning: load average + $THREADS threads exceeds the $(nproc) cores: the CPUs are oversubscribed."
    echo "         llama.cpp's worker threads meet at a barrier after every graph node (and spin there),"
    echo "         so a descheduled thread stalls it far more than it stalls rosa-serve: treat decode"
    echo "         ratios in particular as an upper bound for rosa, and compare with --threads 1."
fi

# ---- the peer: llama.cpp from the llama-cpp-python sdist --------------------------------------
if [ -z "$LLAMA_SRC" ]; then
    if [ ! -f "$WORK/src/.extracted" ]; then
        rm -rf "$WORK/dl" "$WORK/src"
        mkdir -p "$WORK/dl" "$WORK/src"
        spec=llama-cpp-python${LLP_VERSION:+==$LLP_VERSION}
        echo "== downloading $spec (sdist) from PyPI"
        python3 -m pip download --no-deps --no-binary :all: "$spec" -d "$WORK/dl" > "$LOG/pip.log" 2>&1 \
            || { tail -20 "$LOG/pip.log" >&2; die "pip download failed"; }
        tarball=$(ls "$WORK"/dl/llama_cpp_python-*.tar.gz | head -1)
        tar -xzf "$tarball" -C "$WORK/src"
        basename "$tarball" > "$WORK/src/.extracted"
    fi
    LLAMA_SRC=$(ls -d "$WORK"/src/llama_cpp_python-*/vendor/llama.cpp | head -1)
fi
[ -f "$LLAMA_SRC/CMakeLists.txt" ] || die "no llama.cpp tree at $LLAMA_SRC"
echo "== peer source: $LLAMA_SRC" \
     "$(cat "$WORK/src/.extracted" 2>/dev/null | sed 's/^/(from /; s/$/)/' || true)"
BENCH=$WORK/build-llama/bin/llama-bench
if [ ! -x "$BENCH" ]; then
    echo "== building llama-bench (nice, -j$JOBS; several minutes)"
    nice cmake -S "$LLAMA_SRC" -B "$WORK/build-llama" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF \
        > "$LOG/cmake.log" 2>&1 || { tail -30 "$LOG/cmake.log" >&2; die "cmake configure failed"; }
    nice cmake --build "$WORK/build-llama" -j"$JOBS" --target llama-bench > "$LOG/build.log" 2>&1 \
        || { tail -30 "$LOG/build.log" >&2; die "llama-bench build failed"; }
fi
[ -x "$BENCH" ] || die "no llama-bench after the build (see $LOG/build.log)"

# ---- the checkpoint and its GGUF --------------------------------------------------------------
if [ -z "$MODEL" ]; then
    MODEL=${TMPDIR:-/tmp}/rosa-bench-qwen3-0.6b
    if [ ! -f "$MODEL/rosa_adapter.safetensors" ]; then
        echo "== writing the random Qwen3-0.6B checkpoint (rosa-cli bench)"
        "$ROSA_CLI" bench prefill --threads "$THREADS" --prompt 8 --window 4096 --no-rosa-run > /dev/null
    fi
fi
[ -f "$MODEL/config.json" ] || die "no config.json in $MODEL"
GGUF=$WORK/$(basename "$MODEL")-bf16.gguf
newest=$(ls -t "$MODEL"/model*.safetensors "$MODEL/config.json" | head -1)
if [ ! -f "$GGUF" ] || [ "$newest" -nt "$GGUF" ] || [ "$here/qwen3_to_gguf.py" -nt "$GGUF" ]; then
    echo "== converting $MODEL to $GGUF"
    PYTHONPATH="$LLAMA_SRC/gguf-py${PYTHONPATH:+:$PYTHONPATH}" \
        nice python3 "$here/qwen3_to_gguf.py" "$MODEL" "$TOKENIZER" "$GGUF.tmp"
    mv "$GGUF.tmp" "$GGUF"
fi
echo "== checking that llama-bench loads the GGUF"
"$BENCH" -m "$GGUF" -t "$THREADS" -p 8 -n 1 -r 1 -o csv > "$LOG/check.csv" 2> "$LOG/check.err" \
    || { tail -30 "$LOG/check.err" >&2; die "llama-bench cannot run $GGUF"; }
peer_info=$(python3 - "$LOG/check.csv" <<'EOF'
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))[0]
print(f"build {r.get('build_commit','?')} ({r.get('build_number','?')}), backends {r.get('backends','?')}, "
      f"model_type '{r.get('model_type','?')}', model_size {r.get('model_size','?')} B, "
      f"n_params {r.get('model_n_params','?')}, cpu_info '{r.get('cpu_info','?')}'")
EOF
)
echo "peer: llama.cpp $peer_info"
echo "rosa: $ROSA_CLI (binary built $(date -u -r "$ROSA_CLI" '+%Y-%m-%d %H:%M:%S UTC'); checkout HEAD" \
     "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "model: $MODEL"

# ---- measurements -----------------------------------------------------------------------------
# llama-bench: one repetition per call (-r 1) after its own untimed warm-up run; CSV avg_ts.
peer_tps() {  # kind(prefill|decode) -> tokens/s
    local out=$LOG/peer-$1-$2.csv
    if [ "$1" = prefill ]; then
        "$BENCH" -m "$GGUF" -t "$THREADS" -p "$PROMPT" -n 0 -r 1 -o csv > "$out" 2> "$out.err"
    else
        "$BENCH" -m "$GGUF" -t "$THREADS" -p 0 -n "$GEN" -d "$PROMPT" -r 1 -o csv > "$out" 2> "$out.err"
    fi || { tail -20 "$out.err" >&2; die "llama-bench failed"; }
    python3 -c 'import csv,sys; print(list(csv.DictReader(open(sys.argv[1])))[-1]["avg_ts"])' "$out"
}
rosa_tps() {  # kind precision round -> tokens/s (the window_only line)
    local out=$LOG/rosa-$1-$2-$3.txt
    if [ "$1" = prefill ]; then
        "$ROSA_CLI" bench prefill --model "$MODEL" --threads "$THREADS" --prompt "$PROMPT" --window 4096 \
            --no-rosa-run --precision "$2" > "$out" 2>&1
    else
        "$ROSA_CLI" bench decode --model "$MODEL" --threads "$THREADS" --prompt "$PROMPT" --tokens "$GEN" \
            --window 4096 --no-rosa-run --precision "$2" > "$out" 2>&1
    fi || { tail -20 "$out" >&2; die "rosa-cli bench $1 failed"; }
    sed -n 's/^bench \(prefill\|decode\) config=window_only.* tokens_per_s=\([0-9.]*\).*/\2/p' "$out" | head -1
}

RES=$LOG/results.txt
: > "$RES"
echo "== measurements: $PAIRS interleaved rounds, $THREADS threads, prefill $PROMPT tokens," \
     "decode $GEN tokens after a $PROMPT-token context"
for ((i = 1; i <= PAIRS; i++)); do
    for kind in prefill decode; do
        p=$(peer_tps "$kind" "$i")
        line="round $i $kind llama.cpp=$(printf '%.2f' "$p") tok/s"
        for prec in "${PRECS[@]}"; do
            r=$(rosa_tps "$kind" "$prec" "$i")
            [ -n "$r" ] || die "no window_only line in $LOG/rosa-$kind-$prec-$i.txt"
            ratio=$(python3 -c "print(f'{$r/$p:.3f}')")
            line+="  rosa-$prec=$(printf '%.2f' "$r") tok/s ratio=$ratio"
            echo "$kind $prec $ratio $p $r" >> "$RES"
        done
        echo "$line  (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done

echo "== median ratios rosa/llama.cpp (>1: rosa faster)"
python3 - "$RES" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
seen = []
for k, p, *_ in rows:
    if (k, p) not in seen:
        seen.append((k, p))
for k, p in seen:
    sel = [r for r in rows if r[0] == k and r[1] == p]
    ratios = [float(r[2]) for r in sel]
    peer = [float(r[3]) for r in sel]
    rosa = [float(r[4]) for r in sel]
    print(f"median {k} rosa-{p}/llama.cpp = {statistics.median(ratios):.3f}  "
          f"(ratios {min(ratios):.3f}-{max(ratios):.3f}; rosa {min(rosa):.1f}-{max(rosa):.1f} tok/s, "
          f"llama.cpp {min(peer):.1f}-{max(peer):.1f} tok/s; n={len(sel)})")
EOF
echo "load average (end): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs: $LOG"
