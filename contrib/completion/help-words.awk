# Words to complete, read from `nvx --help`, `nvx CMD --help` or
# `nvxd --help` (the command and option tables of the programs; -v prog=nvxd
# for the latter, whose option lines follow no section header), one per
# line: "c CMD" a command, "s SUB" a subcommand of cmd, "o OPT" an option,
# "f OPT" an option whose value is a file or directory.
/^usage: nvx / && cmd != "" {
    n = split($0, t, " ")
    for (i = 3; i < n; i++)
        if (t[i] == cmd && (i == 3 || t[i - 1] == "|")) {
            m = split(t[i + 1], a, "|")
            for (j = 1; j <= m; j++)
                if (a[j] ~ /^[a-z][a-z-]*$/)
                    print "s " a[j]
        }
}
/^commands:/ { sec = "c"; next }
/^options:/ || /^global options/ { sec = "o"; next }
/^[a-z]/ { sec = prog == "nvxd" ? "o" : "" }
sec == "c" && /^  [a-z]/ { print "c " $1 }
sec == "o" {
    line = $0
    sub(/^ +/, "", line)
    if (line !~ /^-/)
        next
    split(line, spec, /   +/)
    n = split(spec[1], t, /[ ,]+/)
    for (i = 1; i <= n; i++)
        if (t[i] ~ /^--?[a-zA-Z]/)
            print (t[n] ~ /^(FILE|DIR)$/ ? "f " : "o ") t[i]
}
