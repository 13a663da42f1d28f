#!/usr/bin/env bash
# bench_tokenize.sh: encoding throughput of rosa-cli against Hugging Face `tokenizers` on the same
# generated text, both on one core, in one run.
#
# Usage: tools/bench_tokenize.sh [build dir, default build] [MB, default 8] [tokenizer.json]
# Needs: a built rosa-cli, python3 with `tokenizers` (pip install tokenizers).
# Prints one `bench tokenize impl=... mb_per_s=...` line per implementation (best of 3 runs):
#   rosa         rosa-cli bench tokenize (one rosa_tokenize call over the whole text)
#   rosa-lines   the same, one call per line
#   hf           Tokenizer.encode on the whole text, add_special_tokens=False
#   hf-lines     Tokenizer.encode_batch on the text's lines (HF's faster way to feed big text)
#   hf-fast-lines  Tokenizer.encode_batch_fast on the lines (no offsets: HF's fastest path)
# and checks that both produced the same ids.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mb=${2:-8}
tok=${3:-../shared/tokenizer/qwen3/tokenizer.json}
cli="$build/clients/rosa-cli"
[ -x "$cli" ] || { echo "bench_tokenize.sh: $cli not built" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one core for both: pin to CPU 0 where taskset exists
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

"${pin[@]}" "$cli" bench tokenize --tokenizer "$tok" --mb "$mb" --write-text "$tmp/text.txt"
"${pin[@]}" "$cli" bench tokenize --tokenizer "$tok" --text "$tmp/text.txt" --lines
"${pin[@]}" "$cli" tokenize --tokenizer "$tok" - < "$tmp/text.txt" > "$tmp/rosa.ids"

TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 "${pin[@]}" python3 - "$tok" "$tmp/text.txt" "$tmp/rosa.ids" <<'EOF'
import re, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
data = open(sys.argv[2], "rb").read()
text = data.decode("utf-8")
lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # split after each \n, as rosa-cli --lines
def best(fn, runs=3):
    t = 1e30
    for _ in range(runs):
        t0 = time.perf_counter(); out = fn(); t = min(t, time.perf_counter() - t0)
    return t, out
secs, enc = best(lambda: tok.encode(text, add_special_tokens=False))
ids = enc.ids
print("bench tokenize impl=hf bytes=%d tokens=%d seconds=%.4f mb_per_s=%.2f" % (len(data), len(ids), secs, len(data) / 1e6 / secs))
secs, encs = best(lambda: tok.encode_batch(lines, add_special_tokens=False))
n = sum(len(e.ids) for e in encs)
print("bench tokenize impl=hf-lines bytes=%d tokens=%d seconds=%.4f mb_per_s=%.2f" % (len(data), n, secs, len(data) / 1e6 / secs))
if hasattr(tok, "encode_batch_fast"):
    secs, encs = best(lambda: tok.encode_batch_fast(lines, add_special_tokens=False))
    n = sum(len(e.ids) for e in encs)
    print("bench tokenize impl=hf-fast-lines bytes=%d tokens=%d seconds=%.4f mb_per_s=%.2f" % (len(data), n, secs, len(data) / 1e6 / secs))
ours = [int(x) for x in open(sys.argv[3]).read().split()]
print("ids identical to HF: %s" % ("yes" if ours == ids else "NO"))
sys.exit(0 if ours == ids else 1)
EOF
