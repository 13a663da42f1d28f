#!/usr/bin/env bash
# prep-device-check.sh: run on the development machine (Debian 12, x86-64, network) before the
# device call.  Stages in REPO/.devcheck/ (git-ignored; the device call carries it) what the
# bare device image lacks for tests/gpu/device-check.sh:
#   debs/      the C build dependencies as Debian packages: cjson, pcre2, utf8proc, check +
#              subunit, libcurl (rosa-cli links it), pkgconf (the image may have no pkg-config)
#   lib/       libcurl's runtime closure from this machine (its nghttp2, ssl, ldap, ... sonames)
#   shared/    the golden cases (../shared does not travel with the working tree)
#   MANIFEST   what was staged, sizes, and the newest glibc symbol version any staged library needs
# rosa-server is not built by the check (-DROSA_SERVER=OFF), so libmicrohttpd/libuv stay behind.
# Usage: tests/gpu/prep-device-check.sh [--shared DIR]   (DIR defaults to ../shared, $ROSA_SHARED)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${ROSA_SHARED:-$REPO/../shared}
[ "${1:-}" = "--shared" ] && SHARED=${2:?--shared DIR}
D=$REPO/.devcheck
PKGS=(libcjson-dev libcjson1 libutf8proc-dev libutf8proc2 libpcre2-dev libpcre2-8-0 libpcre2-16-0
      libpcre2-32-0 libpcre2-posix3 check libsubunit-dev libsubunit0 libcurl4-openssl-dev libcurl4
      pkgconf pkgconf-bin libpkgconf3)

rm -rf "$D"
mkdir -p "$D/debs" "$D/lib"
# the exact versions installed here (what the CPU build is tested with), from apt's cache when
# it holds them, else downloaded
for p in "${PKGS[@]}"; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
    spec=$p${v:+=$v}
    cached=$(ls /var/cache/apt/archives/"${p}_${v//:/%3a}"_*.deb 2>/dev/null | head -1 || true)
    if [ -n "$cached" ]; then cp "$cached" "$D/debs/"
    else (cd "$D/debs" && apt-get download -q "$spec" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    fi
    ls "$D/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "prep: could not get $spec" >&2; exit 1; }
done
libcurl=$(ldconfig -p | awk '/libcurl\.so\.4 .*x86-64/ {print $NF; exit}')
[ -n "$libcurl" ] || { echo "prep: libcurl.so.4 not found on this machine" >&2; exit 1; }
for l in $(ldd "$libcurl" | awk '/=>/ {print $3}'); do
    case $(basename "$l") in
        libc.so*|libm.so*|libpthread*|libdl.so*|librt.so*|libresolv*|ld-linux*) ;;
        *) cp -L "$l" "$D/lib/" ;;
    esac
done
if [ -d "$SHARED/golden" ]; then
    mkdir -p "$D/shared"
    cp -r "$SHARED/golden" "$D/shared/golden"
else
    echo "prep: WARNING: no golden cases at $SHARED/golden: test_golden and test_cuda_bf16 will skip (77) on the device" >&2
fi
# newest GLIBC_x.y symbol version any staged library asks for: the device image's glibc must be
# at least this (the check prints the device's own in its environment log)
tmp=$(mktemp -d)
for f in "$D"/debs/*.deb; do dpkg-deb -x "$f" "$tmp"; done
glibc=$( { find "$tmp" "$D/lib" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null || true; } \
         | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1)
rm -rf "$tmp"
{
    echo "staged $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME") for $(git -C "$REPO" rev-parse --short HEAD)"
    echo "newest glibc symbol needed: ${glibc:-none}"
    (cd "$D" && du -sh debs lib shared 2>/dev/null)
    (cd "$D" && ls debs lib)
} > "$D/MANIFEST"
size=$(du -sm "$D" | cut -f1)
cat "$D/MANIFEST" | head -4
echo "prep: staged ${size} MiB in $D (the device call carries at most 64 MiB with the working tree)"
[ "$size" -lt 48 ] || { echo "prep: staged folder too large" >&2; exit 1; }
cat <<EOF
now, from a session with a device (see docs/CUDA.md, "The device check"):
  run(command='bash tests/gpu/device-check.sh', carry=['.devcheck'], timeout_s=480)
EOF
