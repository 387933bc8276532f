# Sourced by the benchmark scripts before they start a peer: both sides load
# OpenBLAS, and on a CPU that hides its model OpenBLAS takes generic SSE3
# kernels while ours restarts with wider ones (src/cpu/cpu_blas_core.c).
# Export the core our build runs with, so the peer gets the same kernels.
# The user's own OPENBLAS_CORETYPE wins.  Needs $1: the build directory.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  _core_prog="$1/bench/bench_blas_core"; [ -x "$_core_prog" ] || _core_prog="$1/bench_blas_core"
  if [ -x "$_core_prog" ]; then
    _core="$("$_core_prog")"
    [ -z "$_core" ] || export OPENBLAS_CORETYPE="$_core"
  else
    echo "note: no bench_blas_core under $1; the peer's OpenBLAS picks its own kernels" >&2
  fi
  unset _core _core_prog
fi
