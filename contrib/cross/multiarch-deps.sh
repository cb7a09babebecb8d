#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: multiarch-deps.sh TRIPLET DIR
# Debian's libhttp-parser-dev is not Multi-Arch: same, so its :arm64 and
# :armhf builds cannot sit beside the native one that the plain build
# needs. Its header is the same for every architecture (the native
# package's serves), and the target's runtime package
# (libhttp-parser2.9:ARCH, co-installable) holds the library: DIR/lib gets
# the libhttp_parser.so link the linker looks for, and DIR/meson-cross.ini
# a second meson cross file that points the linker there.
set -eu
triplet=$1
dir=$2
lib=$(ls /usr/lib/"$triplet"/libhttp_parser.so.2.* 2>/dev/null | head -n 1)
[ -n "$lib" ] || {
    echo "multiarch-deps.sh: no /usr/lib/$triplet/libhttp_parser.so.2.*: install libhttp-parser2.9 for $triplet's architecture" >&2
    exit 1
}
mkdir -p "$dir/lib"
ln -sf "$lib" "$dir/lib/libhttp_parser.so"
cat >"$dir/meson-cross.ini" <<INI
[built-in options]
c_link_args = ['-L$dir/lib']
INI
