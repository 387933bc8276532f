# check_cli.sh: shared helpers of the tests/cli_*.sh scripts (sourced, not a
# test itself): set-up with the skip code, and the two checks every case
# makes: the exit code with no crash, and a one-line message that matches.
# CLI_VERBOSE=1 prints every stderr, to read the messages a user gets.

# cli_setup NAME BUILD_DIR SOURCE_DIR TOOL...: absolute B and S, MNIST (or
# exit 77), a scratch folder T removed at exit and made current.
cli_setup() {
    local name=$1 t
    B=$(cd "$2" && pwd) && S=$(cd "$3" && pwd) || exit 1
    shift 3
    for t in "$@"; do
        [ -x "$B/$t" ] || { echo "$name: $B/$t not built"; exit 1; }
    done
    MNIST=$(cd "${DC_TEST_DATA:-$S/data}/mnist" 2>/dev/null && pwd) || MNIST=/nonexistent
    if [ ! -e "$MNIST/train-images-idx3-ubyte.gz" ] && [ ! -e "$MNIST/train-images-idx3-ubyte" ]; then
        echo "$name: no MNIST in $MNIST: skipped"
        exit 77
    fi
    T=$(mktemp -d "${DC_TEST_TMP:-/tmp}/$name.XXXXXX") || exit 1
    trap 'rm -rf "$T"' EXIT
    cd "$T" || exit 1
    FAILS=0
}

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# small_job_ini [LINE...]: a small valid dctrain job on MNIST (500 images,
# one epoch, 784-30-10, layers fc1 and fc2) on stdout; the LINEs (more
# sections: [prune], [encode], ...) go between [train] and the layers.
# Tests count on the line numbers of the job without LINEs.
small_job_ini() {
    cat <<EOF
[data]
set = mnist
dir = $MNIST
train_limit = 500
test_limit = 200

[train]
epochs = 1
batch = 64
threads = 1

EOF
    [ $# = 0 ] || printf '%s\n' "$@" ""
    cat <<EOF
[fc]
name = fc1
outputs = 30
activation = relu

[fc]
name = fc2
outputs = 10
EOF
}

# run EXPECTED_RC NAME CMD...: runs CMD with stdout/stderr in out/err and
# checks the exit code and that nothing crashed (exit >= 128, named by its
# signal, or a sanitizer report).  EXPECTED_RC 1or2 accepts either.
run() {
    local want=$1 name=$2
    shift 2
    "$@" >out 2>err
    RC=$?
    [ -z "${CLI_VERBOSE:-}" ] || { echo "== $name (exit $RC)"; cat err; }
    if [ "$RC" -ge 128 ] || grep -Eq 'Segmentation|Aborted|Sanitizer|runtime error|core dumped' err; then
        local sig=""
        [ "$RC" -le 128 ] || sig=", killed by SIG$(kill -l $((RC - 128)) 2>/dev/null)"
        fail "$name: crashed (exit $RC$sig): $(head -c 400 err)"
        return 1
    fi
    if [ "$want" = 1or2 ]; then
        [ "$RC" = 1 ] || [ "$RC" = 2 ] || { fail "$name: exit $RC, expected 1 or 2: $(head -c 300 err)"; return 1; }
    elif [ "$RC" != "$want" ]; then
        fail "$name: exit $RC, expected $want: $(head -c 300 err)"
        return 1
    fi
    return 0
}

# one_line NAME EXTENDED_REGEX: stderr is exactly one line and matches.
one_line() {
    local n
    n=$(wc -l <err)
    [ "$n" = 1 ] || fail "$1: $n lines on stderr, expected one: $(head -c 300 err)"
    grep -Eq -- "$2" err || fail "$1: stderr does not match /$2/: $(head -c 300 err)"
}

# cli_finish NAME: the verdict as the exit code.
cli_finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$1: $FAILS check(s) failed"
        exit 1
    fi
    echo "$1: ok"
    exit 0
}
