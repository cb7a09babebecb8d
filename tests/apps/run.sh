#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a node test of tests/apps: run.sh [--npm] SCRIPT.mjs
# With --npm the client libraries are installed first with `npm ci` from
# the committed package.json and package-lock.json into
# $NVX_BUILD_ROOT/tests/apps (once per lock file: the copy of the lock
# there says what node_modules holds). No node, or no registry: exit 77
# (meson's skip) with a message.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
dir=$NVX_BUILD_ROOT/tests/apps
npm=false
if [ "$1" = --npm ]; then
    npm=true
    shift
fi
command -v node >/dev/null 2>&1 || {
    echo "skipped: node not found (Debian package nodejs; contrib/nvx-dev test installs it)"
    exit 77
}
mkdir -p "$dir"
if $npm && { [ ! -d "$dir/node_modules" ] || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json"; }; then
    command -v npm >/dev/null 2>&1 || {
        echo "skipped: npm not found (Debian package npm; contrib/nvx-dev test installs it)"
        exit 77
    }
    rm -rf "$dir/node_modules" "$dir/package-lock.json"
    cp "$src/package.json" "$dir/package.json"
    cp "$src/package-lock.json" "$dir/package-lock.json"
    if ! (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
        tail -n 5 "$dir/npm.log"
        rm -rf "$dir/node_modules" "$dir/package-lock.json"
        echo "skipped: npm ci failed (is the npm registry reachable?): see $dir/npm.log"
        exit 77
    fi
fi
# Beside node_modules, so that the imports resolve.
cp "$src/nvxd.mjs" "$src/$1" "$dir/"
exec node "$dir/$1"
