#!/bin/sh
# SPDX-License-Identifier: MIT
# The bash and zsh completions (contrib/completion/) offer every command of
# nvx (the list in cli/meson.build, whose files exist), every option each
# command's --help lists, the subcommands of key, trust, sig and peer, and
# every nvxd option; a file-valued option completes files.
# Usage: check-completion.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
PATH=$build/cli:$build/daemon:$PATH
export PATH
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# The command table's source: ['name', 'cmd-file.c'] pairs in cli/meson.build.
cmds=$(grep -o "\['[a-z]*', 'cmd-[a-z-]*\.c'\]" "$src/cli/meson.build" |
    while IFS="'" read -r _ name _ file _; do
        [ -f "$src/cli/$file" ] && echo "$name"
    done)
[ -n "$cmds" ] || fail "no commands found in cli/meson.build"
# Options of a program's help: the long names at the start of option lines.
opts_of() { "$@" --help | grep -E '^ +(-[a-zA-Z], )?--[a-z]' | sed -E 's/^ +(-[a-zA-Z], )?(--[a-z0-9-]+).*/\2/'; }
subs="key:new,show trust:add,ls,rm sig:ls,rm peer:add,rm,ls"

# complete SHELL WORD... : what SHELL completes for the last (empty or
# partial) word of `WORD...`, one per line.
complete_bash() {
    bash -c '
        . "$1"
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        case ${COMP_WORDS[0]} in nvxd) _nvxd ;; *) _nvx ;; esac
        printf "%s\n" "${COMPREPLY[@]}"
    ' sh "$build/contrib/nvx.bash" "$@"
}
complete_zsh() {
    zsh -f -c '
        compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
        _files() { print -- "<files>"; }
        script=$1
        shift
        words=("$@")
        CURRENT=$#
        source "$script"
    ' zsh "$build/contrib/_nvx" "$@"
}

check_shell() {
    sh=$1
    got=$(complete_$sh nvx "")
    for c in $cmds; do
        echo "$got" | grep -qx "$c" || fail "$sh: nvx <TAB> does not offer $c"
    done
    for c in $cmds; do
        got=$(complete_$sh nvx "$c" --)
        for o in $(opts_of nvx "$c"); do
            echo "$got" | grep -qx -- "$o" || fail "$sh: nvx $c --<TAB> does not offer $o"
        done
    done
    for s in $subs; do
        c=${s%%:*}
        echo " $cmds " | tr '\n' ' ' | grep -q " $c " || continue
        got=$(complete_$sh nvx "$c" "")
        for w in $(echo "${s#*:}" | tr , " "); do
            echo "$got" | grep -qx "$w" || fail "$sh: nvx $c <TAB> does not offer $w"
        done
    done
    got=$(complete_$sh nvxd --)
    for o in $(opts_of nvxd); do
        echo "$got" | grep -qx -- "$o" || fail "$sh: nvxd --<TAB> does not offer $o"
    done
    got=$(complete_$sh nvx --store "")
    case $sh in
    bash) [ "$(echo "$got" | head -n 1)" != "" ] || fail "bash: --store does not complete files" ;;
    zsh) echo "$got" | grep -qx "<files>" || fail "zsh: --store does not complete files" ;;
    esac
    echo "$sh: $(echo "$cmds" | wc -l) commands, their options and subcommands, nvxd's options"
}

cd "$src" # files to complete for --store
check_shell bash
if command -v zsh >/dev/null 2>&1; then
    check_shell zsh
else
    echo "skipping zsh: zsh is absent (apt-get install zsh)"
fi
