#!/usr/bin/env bash
# test-staged-build.sh: proves, on the development machine (no GPU needed; root, for a private
# mount namespace), that tests/gpu/device-check.sh builds from .devcheck/ alone, as it must on
# the bare device image.  Not a ctest (it needs the network-staged folder and minutes of build).
#   tests/gpu/prep-device-check.sh && tests/gpu/test-staged-build.sh [BUILD_DIR]
# Inside `unshare -m` the host's copies of the staged -dev packages are hidden: their headers and
# static libraries are covered by empty files, the pkg-config files and programs are hidden, and
# the cjson / utf8proc / subunit runtime libraries are covered too (nothing on the host needs
# them), so a compile, link or run that reached for the host would fail.  Then device-check.sh
# runs with ROSA_DEVCHECK_BUILD_ONLY=1 (configure, build sm_90, each test binary starts and
# skips for want of a GPU, rosa-cli starts), and every built program must resolve cjson, pcre2,
# utf8proc, libcurl and subunit from the staged folders, not from the host.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build-staged}
OUTD=$BUILD-out
[ -d "$REPO/.devcheck/debs" ] || { echo "run tests/gpu/prep-device-check.sh first"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (a private mount namespace hides the host's -dev packages)"; exit 1; }

if [ "${1:-}" != "--inside" ] && [ -z "${STAGED_TEST_INSIDE:-}" ]; then
    rm -rf "$BUILD" "$OUTD"
    STAGED_TEST_INSIDE=1 exec unshare -m bash "$0" "$BUILD"
fi

mount --make-rprivate /
hide=$(mktemp -d)
: > "$hide/empty"
mkdir "$hide/emptydir"
cover() { # cover PATH: an empty file or directory in its place, for this namespace only
    local p=$1
    if [ -d "$p" ] && [ ! -L "$p" ]; then mount --bind "$hide/emptydir" "$p"
    elif [ -e "$p" ]; then mount --bind "$hide/empty" "$(readlink -f "$p")"; fi
}
n=0
for pkg in libcjson-dev libutf8proc-dev libpcre2-dev check libsubunit-dev libcurl4-openssl-dev; do
    for f in $(dpkg -L "$pkg" 2>/dev/null | grep -E '^/usr/include/.*\.h$|\.a$'); do
        [ -f "$f" ] && [ ! -L "$f" ] && { mount --bind "$hide/empty" "$f"; n=$((n + 1)); }
    done
done
for d in /usr/lib/x86_64-linux-gnu/pkgconfig /usr/share/pkgconfig /usr/lib/pkgconfig /usr/local/lib/pkgconfig; do
    [ -d "$d" ] && cover "$d"
done
for p in /usr/bin/pkg-config /usr/bin/pkgconf /usr/bin/x86_64-linux-gnu-pkg-config; do cover "$p"; done
for l in /usr/lib/x86_64-linux-gnu/libcjson.so.1 /usr/lib/x86_64-linux-gnu/libutf8proc.so.2 \
         /usr/lib/x86_64-linux-gnu/libsubunit.so.0; do cover "$l"; done
echo "test-staged-build: $n host headers and static libraries covered, pkg-config hidden"
command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libcjson 2>/dev/null && { echo "FAIL: host pkg-config still works"; exit 1; }
echo '#include <cjson/cJSON.h>
int main(void) { return cJSON_Version() == 0; }' > "$hide/probe.c"
if cc -Werror -c "$hide/probe.c" -o "$hide/probe.o" 2>/dev/null; then echo "FAIL: the host's cJSON.h is still visible"; exit 1; fi

set +e
OUT=$OUTD ROSA_DEVCHECK_BUILD_ONLY=1 ROSA_DEVCHECK_BUILD=$BUILD ROSA_DEVCHECK_BUDGET=3000 \
    nice bash "$REPO/tests/gpu/device-check.sh"
rc=$?
set -e
[ $rc = 0 ] || { echo "FAIL: device-check.sh (build only) exit $rc; logs in $OUTD"; tail -40 "$OUTD/1_env_build.log"; exit 1; }

# every program resolves the staged libraries, not the host's
fail=0
for exe in "$BUILD/tests/test_cuda_kernels" "$BUILD/tests/test_golden" "$BUILD/tests/test_cuda_bf16" "$BUILD/clients/rosa-cli"; do
    deps=$(LD_LIBRARY_PATH=$REPO/.devcheck/lib ldd "$exe")
    for lib in libcjson libpcre2-8 libutf8proc libcurl libsubunit; do
        line=$(grep -E "^\s*$lib\.so" <<< "$deps" || true)
        [ -z "$line" ] && continue
        case $line in
            *"/tmp/rosa-devroot/"*|*"$REPO/.devcheck/lib/"*) ;;
            *) echo "FAIL: $(basename "$exe"): $line"; fail=1 ;;
        esac
    done
done
grep -E "^pkgcfg_lib_[A-Z0-9]+_[a-z0-9_-]+:FILEPATH=" "$BUILD/CMakeCache.txt" | grep -v "=/tmp/rosa-devroot/" \
    | grep -vE "_(pthread|rt|m):" && { echo "FAIL: a library found outside the staged root (above)"; fail=1; }
[ $fail = 0 ] || exit 1
echo "test-staged-build: ok: built from .devcheck/ alone; programs resolve the staged libraries"
