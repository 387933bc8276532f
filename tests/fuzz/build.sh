#!/usr/bin/env bash
# build.sh: build the libFuzzer targets with clang (address + undefined
# sanitizers, no OpenMP, no BLAS, no CUDA) into tests/fuzz/build/.  The
# library sources are compiled here, apart from the main CMake build.
#   bash tests/fuzz/build.sh            (CC=clang-14 JOBS=2 to override)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/build"
CC="${CC:-clang}"
JOBS="${JOBS:-2}"
TARGETS="config mnist cifar checkpoint modelfile interop"

if ! "$CC" --version >/dev/null 2>&1; then
  echo "build.sh: $CC not found; install clang (Debian: apt-get install clang) or set CC" >&2
  exit 1
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-std=c11 -O1 -g -fno-omit-frame-pointer $SAN -Wall -Wextra -Wno-psabi -I$root/include -I$root/src -I$root/cuda"
# the containers of src/interop: libzip (.npz) and libcjson (.safetensors), as the main build finds them
CFLAGS="$CFLAGS -DDC_HAVE_LIBZIP -DDC_HAVE_CJSON"
mkdir -p "$out/obj"

# the library: every folder of src/ but tools, and the no-CUDA stub
srcs=$(ls "$root"/src/{core,config,data,nn,train,compress,infer,cpu,interop}/*.c "$root/cuda/cuda_absent.c")
compile() { # src -> obj, rebuilt when the source or a header is newer
  local src="$1" obj="$out/obj/$(basename "${1%.c}").o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$root/include" "$root/src" -name '*.h' -newer "$obj" -print -quit)" ]; then
    $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
}
export -f compile; export CC CFLAGS out root
echo "$srcs" | xargs -P "$JOBS" -n 1 bash -c 'compile "$0"'
rm -f "$out/libdc_fuzz.a"
ar rcs "$out/libdc_fuzz.a" $(for s in $srcs; do echo "$out/obj/$(basename "${s%.c}").o"; done)

for t in $TARGETS; do
  $CC $CFLAGS -Werror -fsanitize=fuzzer "$here/fuzz_$t.c" "$here/fuzz_util.c" "$out/libdc_fuzz.a" \
    -lzip -lcjson -lz -lm -o "$out/fuzz_$t"
done
echo "build.sh: built $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)in $out"
