# staged-deps.sh: sourced (not run) by device-check.sh and test-staged-build.sh.  Makes the C
# build dependencies that tests/gpu/prep-device-check.sh staged in .devcheck/ usable on a
# machine that lacks them (the bare device image has no -dev packages and no network):
#
#   staged_deps_setup STAGE ROOT     unpack STAGE/debs/*.deb into ROOT, point their pkg-config
#                                    files at ROOT, and set for the caller:
#     STAGED_CMAKE_ARGS   (array) -DPKG_CONFIG_EXECUTABLE=<ROOT's pkgconf wrapper> and the
#                         linker's -rpath-link to libcurl's runtime closure
#     STAGED_RUN_LD_PATH  LD_LIBRARY_PATH for programs linking libcurl (rosa-cli): RUNPATH is
#                         not transitive, so libcurl's own needs come from STAGE/lib this way
#   and exports PKG_CONFIG_LIBDIR (only ROOT's .pc files are seen; PKG_CONFIG_PATH cleared).
#
# Why rewrite the .pc files instead of PKG_CONFIG_SYSROOT_DIR: pkgconf drops -I/usr/include
# and -L/usr/lib/... as system directories *before* prefixing the sysroot, so check.h and
# <cjson/cJSON.h> would silently come from the host (or not at all on the device).  Rewriting
# prefix=/usr to prefix=ROOT/usr makes every flag explicit.
# Returns non-zero (and says why on stderr) when something is missing.

staged_deps_setup() {
    local stage=$1 root=$2 f n=0
    STAGED_CMAKE_ARGS=()
    STAGED_RUN_LD_PATH=
    if ! ls "$stage"/debs/*.deb >/dev/null 2>&1; then
        echo "staged-deps: no $stage/debs/*.deb (run tests/gpu/prep-device-check.sh first)" >&2
        return 1
    fi
    rm -rf "$root"
    mkdir -p "$root"
    for f in "$stage"/debs/*.deb; do
        if dpkg-deb --version >/dev/null 2>&1; then
            dpkg-deb -x "$f" "$root"
        else # no dpkg: a .deb is an ar archive holding data.tar.{xz,zst,gz}
            local m
            m=$(ar t "$f" | grep '^data\.tar')
            case $m in
                *.zst) ar p "$f" "$m" | zstd -dc | tar -x -C "$root" ;;
                *.gz) ar p "$f" "$m" | tar -xz -C "$root" ;;
                *) ar p "$f" "$m" | tar -xJ -C "$root" ;;
            esac
        fi || { echo "staged-deps: cannot unpack $f" >&2; return 1; }
        n=$((n + 1))
    done
    local libd=$root/usr/lib/x86_64-linux-gnu
    local pcd=$libd/pkgconfig
    for f in "$pcd"/*.pc "$root"/usr/share/pkgconfig/*.pc; do
        [ -f "$f" ] || continue
        # prefix=/usr, libdir=/usr/lib/..., includedir=/usr/include/... -> under ROOT
        sed -i -E "s#^([A-Za-z_]+=)/usr#\\1$root/usr#" "$f"
    done
    local pkgconf=$root/usr/bin/pkgconf
    if [ ! -x "$pkgconf" ]; then
        echo "staged-deps: $pkgconf missing from the staged packages" >&2
        return 1
    fi
    # pkgconf needs its libpkgconf, which only it may see (cmake and ld must not)
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$libd" "$pkgconf" > "$root/pkg-config"
    chmod +x "$root/pkg-config"
    export PKG_CONFIG_LIBDIR=$pcd:$root/usr/share/pkgconfig
    export PKG_CONFIG_PATH=
    unset PKG_CONFIG_SYSROOT_DIR
    STAGED_CMAKE_ARGS=(-DPKG_CONFIG_EXECUTABLE="$root/pkg-config"
                       "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$stage/lib:$libd")
    STAGED_RUN_LD_PATH=$stage/lib
    local p missing=
    for p in libcjson libpcre2-8 libutf8proc check libcurl; do
        "$root/pkg-config" --exists "$p" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "staged-deps: after unpacking $n packages, pkg-config still lacks:$missing" >&2
        return 1
    fi
    echo "staged-deps: $n packages unpacked in $root; pkg-config sees only them"
}
