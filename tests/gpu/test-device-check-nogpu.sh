#!/usr/bin/env bash
# test-device-check-nogpu.sh: ctest device_check_no_gpu.  CI machines have no GPU, and there
# tests/gpu/device-check.sh must say so and exit 0 at once, without configuring, building or
# staging anything.  Also parses every tests/gpu script (bash -n), so a syntax error in the
# device-side script is caught here rather than on a lent machine.  Skips (77) on a machine
# with a GPU, where the check would really run (minutes).
set -u
here=$(cd "$(dirname "$0")" && pwd)
for f in "$here"/*.sh; do
    bash -n "$f" || { echo "FAIL: $f does not parse"; exit 1; }
done
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "device_check_no_gpu: this machine has a GPU: skipped"
    exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build=$out/build
start=$(date +%s)
OUT=$out ROSA_DEVCHECK_BUILD=$build bash "$here/device-check.sh" > "$out/stdout" 2>&1
rc=$?
secs=$(($(date +%s) - start))
cat "$out/stdout"
[ $rc = 0 ] || { echo "FAIL: exit status $rc, want 0"; exit 1; }
[ $secs -le 10 ] || { echo "FAIL: took ${secs}s, want an immediate exit"; exit 1; }
grep -q "no NVIDIA GPU" "$out/stdout" || { echo "FAIL: does not say there is no GPU"; exit 1; }
grep -q "no NVIDIA GPU" "$out/summary.txt" || { echo "FAIL: no summary.txt saying so in \$OUT"; exit 1; }
[ ! -e "$build" ] || { echo "FAIL: configured a build without a GPU"; exit 1; }
echo "device_check_no_gpu: ok (${secs}s)"
