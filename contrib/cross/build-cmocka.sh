#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-builds Debian's cmocka source for ARCH into PREFIX as a static library,
# so the runtime's cmocka tests run under qemu-user. Debian has no
# libcmocka-dev for riscv64 in bookworm, hence building from Debian's source
# package with a private apt state (the system's package lists stay untouched).
# Writes PREFIX/meson-cross.ini, a second meson cross file that points
# pkg-config at PREFIX.
set -eu
arch=$1
prefix=$2
[ -f "$prefix/lib/libcmocka.a" ] && [ -f "$prefix/meson-cross.ini" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
cat >"$work/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
aptopts="-o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o Dir::Etc::SourceList=$work/src.sources -o Dir::Etc::SourceParts=/dev/null -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get $aptopts update -qq
# shellcheck disable=SC2086
(cd "$work" && apt-get $aptopts source --download-only -qq cmocka >/dev/null)
tar -C "$work" -xf "$work"/cmocka_*.orig.tar.xz
cat >"$work/toolchain.cmake" <<TC
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR $arch)
set(CMAKE_C_COMPILER $arch-linux-gnu-gcc)
TC
cmake -S "$work"/cmocka-*/ -B "$work/b" -DCMAKE_TOOLCHAIN_FILE="$work/toolchain.cmake" \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib -DWITH_STATIC_LIB=ON \
    -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$work/b" -j2 install >/dev/null
# Link the static archive: -lcmocka must not find a shared object qemu cannot load.
rm -f "$prefix"/lib/libcmocka.so*
mv "$prefix/lib/libcmocka-static.a" "$prefix/lib/libcmocka.a"
cat >"$prefix/meson-cross.ini" <<INI
[binaries]
pkgconfig = 'pkg-config'

[properties]
pkg_config_libdir = ['$prefix/lib/pkgconfig']
INI
