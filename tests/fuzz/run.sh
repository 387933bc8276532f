#!/usr/bin/env bash
# run.sh SECONDS [TARGET...]: build the libFuzzer targets and run each for
# SECONDS (one at a time), starting from the committed seeds plus the corpus
# grown by earlier runs (tests/fuzz/build/corpus/TARGET).  Exit status 1 when
# any target finds a crash, leak, timeout or allocation over the limits; the
# input is left in tests/fuzz/build/artifacts/TARGET/.
#   bash tests/fuzz/run.sh 10                 (CI: every target, 10 s each)
#   bash tests/fuzz/run.sh 1800 modelfile     (one target for 30 minutes)
# Each target's libFuzzer output goes to tests/fuzz/build/fuzz_TARGET.log;
# the table row printed for it (date, seconds, executions, corpus, findings)
# is appended to that log and to tests/fuzz/build/runs.log.
# Environment: FUZZ_NICE (default 19: the build and the runs yield to any
# other work), FUZZ_FLAGS (extra libFuzzer flags), JOBS (build.sh's, default 2).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
all="config mnist cifar checkpoint modelfile interop"
usage="usage: run.sh SECONDS [TARGET...]; targets: $all"
secs="${1:?$usage}"
shift
case "$secs" in
  '' | *[!0-9]* | 0) echo "run.sh: SECONDS '$secs' is not a positive whole number; $usage" >&2; exit 2 ;;
esac
targets="${*:-$all}"
for t in $targets; do
  case " $all " in
    *" $t "*) ;;
    *) echo "run.sh: unknown target '$t'; $usage" >&2; exit 2 ;;
  esac
done
out="$here/build"
nice="${FUZZ_NICE:-19}"
mkdir -p "$out"

# one build at a time (a second run.sh started meanwhile waits for it)
buildlog="$out/build.$$.log"
if ! flock "$out/.build.lock" nice -n "$nice" bash "$here/build.sh" >"$buildlog" 2>&1; then
  cat "$buildlog" >&2
  rm -f "$buildlog"
  echo "run.sh: build failed" >&2
  exit 1
fi
rm -f "$buildlog"
# scratch files of the harnesses, this run's own
export TMPDIR="$out/tmp.$$"
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
printf '%-19s %-11s %8s %10s %14s %8s  %s\n' date target seconds execs corpus findings result
for t in $targets; do
  corpus="$out/corpus/$t" art="$out/artifacts/$t"
  mkdir -p "$corpus" "$art"
  log="$out/fuzz_$t.log"
  stamp="$TMPDIR/start.$t"
  touch "$stamp"
  started=$(date '+%Y-%m-%d %H:%M:%S')
  nice -n "$nice" "$out/fuzz_$t" "$corpus" "$here/seeds/$t" -max_total_time="$secs" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$art/" ${FUZZ_FLAGS:-} >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  [ -n "$took" ] || took=$(( $(date +%s) - $(date -r "$stamp" +%s) ))
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  # the inputs libFuzzer saved this run: a crash, leak, timeout or out-of-memory each
  found=$(find "$art" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
  result=ok
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    result="FAILED (rc $rc): $(grep -m1 -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | cut -c1-120); log $log, inputs $art"
    status=1
  fi
  row=$(printf '%-19s %-11s %8s %10s %14s %8s  %s' "$started" "$t" "$took" "${execs:-?}" "${corp:-?}" "$found" "$result")
  echo "$row"
  echo "run.sh: $row" >>"$log"
  echo "$row" >>"$out/runs.log"
done
exit $status
