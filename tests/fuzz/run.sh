#!/usr/bin/env bash
# run.sh SECONDS [TARGET...]: build the libFuzzer targets and run each for
# SECONDS (one at a time), starting from the committed seeds plus the corpus
# grown by earlier runs (tests/fuzz/build/corpus/TARGET).  Exit status 1 when
# any target finds a crash, leak, timeout or allocation over the limits; the
# input is left in tests/fuzz/build/artifacts/TARGET/.
#   bash tests/fuzz/run.sh 10                 (CI: every target, 10 s each)
#   bash tests/fuzz/run.sh 240 modelfile      (one target)
# Environment: FUZZ_NICE (default 10), FUZZ_FLAGS (extra libFuzzer flags).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
secs="${1:?usage: run.sh SECONDS [TARGET...]}"
shift
targets="${*:-config mnist cifar checkpoint modelfile interop}"
out="$here/build"

bash "$here/build.sh" >"$out.log" 2>&1 || { cat "$out.log" >&2; echo "run.sh: build failed" >&2; exit 1; }
rm -f "$out.log"
export TMPDIR="$out/tmp"
mkdir -p "$TMPDIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
printf '%-11s %8s %10s %12s  %s\n' target seconds execs corpus result
for t in $targets; do
  corpus="$out/corpus/$t" art="$out/artifacts/$t"
  mkdir -p "$corpus" "$art"
  log="$out/fuzz_$t.log"
  nice -n "${FUZZ_NICE:-10}" "$out/fuzz_$t" "$corpus" "$here/seeds/$t" -max_total_time="$secs" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$art/" ${FUZZ_FLAGS:-} >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (rc $rc): $(grep -m1 -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | cut -c1-120); log $log"
    status=1
  fi
  printf '%-11s %8s %10s %12s  %s\n' "$t" "${took:-?}" "${execs:-?}" "$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)" "$result"
done
rm -rf "$TMPDIR"
exit $status
