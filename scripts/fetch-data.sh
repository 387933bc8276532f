#!/usr/bin/env bash
# fetch-data.sh: put MNIST or CIFAR-10 where the readers (src/data/) look for them.
#   scripts/fetch-data.sh mnist|cifar10 [DEST]      (DEST defaults to ./data)
# MNIST   -> DEST/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
# CIFAR-10 -> DEST/cifar10/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
# It first tries the official releases (short timeouts, so an offline machine
# fails fast), then the mirror folder named by $DC_DATA_MIRROR, laid out like
# ../shared/data (see its README.md).  Files already present and valid are kept.
set -euo pipefail

MNIST_URLS="https://ossci-datasets.s3.amazonaws.com/mnist http://yann.lecun.com/exdb/mnist"
MNIST_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
MNIST_TRAIN_MD5=6bbc9ace898e44ae57da46a324031adb # uncompressed train-images
CIFAR_URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_FILES="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin"
CIFAR_FILE_BYTES=30730000 # 10000 records of 1 label + 3072 pixel bytes

usage() {
  echo "usage: $0 mnist|cifar10 [DEST]   (DEST defaults to ./data; mirror fallback: DC_DATA_MIRROR=DIR)" >&2
  exit 2
}

say() { echo "fetch-data: $*"; }
die() { echo "fetch-data: error: $*" >&2; exit 1; }

# download URL FILE [MAX_SECONDS]: curl or wget, giving up quickly when offline.
download() {
  local url="$1" out="$2" max="${3:-120}"
  if command -v curl >/dev/null; then
    curl -fsSL --connect-timeout 5 --max-time "$max" -o "$out" "$url" 2>/dev/null && return 0
  elif command -v wget >/dev/null; then
    wget -q --connect-timeout=5 --timeout=30 --tries=1 -O "$out" "$url" 2>/dev/null && return 0
  fi
  rm -f "$out"
  return 1
}

# A scratch folder beside the destination (same file system, so mv is atomic).
FETCH_TMP=""
make_tmp() {
  FETCH_TMP="$(mktemp -d "$1/.fetch.XXXXXX")"
  trap 'rm -rf "$FETCH_TMP"' EXIT
}

# Sets MIRROR from $DC_DATA_MIRROR; fails when it is unset (not in a subshell, so die exits).
MIRROR=""
mirror_dir() {
  [ -n "${DC_DATA_MIRROR:-}" ] || return 1
  [ -d "$DC_DATA_MIRROR" ] || die "DC_DATA_MIRROR=$DC_DATA_MIRROR is not a folder"
  MIRROR="$DC_DATA_MIRROR"
}

# ---------------------------------------------------------------- MNIST
mnist_valid() {
  local dir="$1" f
  for f in $MNIST_FILES; do
    [ -s "$dir/$f.gz" ] && gzip -t "$dir/$f.gz" 2>/dev/null || return 1
  done
  [ "$(gzip -dc "$dir/train-images-idx3-ubyte.gz" | md5sum | cut -d' ' -f1)" = "$MNIST_TRAIN_MD5" ]
}

mnist_from_web() {
  local dir="$1" tmp="$2" base f
  for base in $MNIST_URLS; do
    say "mnist: trying $base"
    local ok=1
    for f in $MNIST_FILES; do
      if ! download "$base/$f.gz" "$tmp/$f.gz" 120; then ok=0; break; fi
    done
    if [ $ok = 1 ] && mnist_valid "$tmp"; then
      for f in $MNIST_FILES; do mv "$tmp/$f.gz" "$dir/$f.gz"; done
      return 0
    fi
  done
  return 1
}

mnist_from_mirror() {
  local dir="$1" tmp="$2" m f
  mirror_dir || return 1
  m="$MIRROR"
  say "mnist: copying from mirror $m/mnist"
  for f in $MNIST_FILES; do
    [ -f "$m/mnist/$f.gz" ] || die "mirror $m/mnist has no $f.gz"
    cp "$m/mnist/$f.gz" "$tmp/$f.gz"
    chmod u+w "$tmp/$f.gz" # the mirror may be read-only; a later refresh must replace it
  done
  mnist_valid "$tmp" || die "mirror $m/mnist: files are damaged (gzip test or train-images MD5 failed)"
  for f in $MNIST_FILES; do mv "$tmp/$f.gz" "$dir/$f.gz"; done
}

fetch_mnist() {
  local dir="$1/mnist"
  mkdir -p "$dir"
  if mnist_valid "$dir"; then
    say "mnist: $dir already complete (train-images MD5 ok)"
    return 0
  fi
  make_tmp "$dir"
  if mnist_from_web "$dir" "$FETCH_TMP" || mnist_from_mirror "$dir" "$FETCH_TMP"; then
    say "mnist: wrote $dir (train-images MD5 ok)"
    return 0
  fi
  die "mnist: could not download the official files and no mirror is set;" \
      "set DC_DATA_MIRROR to a folder with mnist/*.gz (e.g. DC_DATA_MIRROR=../shared/data)"
}

# ---------------------------------------------------------------- CIFAR-10
cifar_valid() {
  local dir="$1" f
  for f in $CIFAR_FILES; do
    [ -f "$dir/$f" ] && [ "$(stat -c %s "$dir/$f")" = "$CIFAR_FILE_BYTES" ] || return 1
  done
}

cifar_from_web() {
  local out="$1" tmp="$2"
  say "cifar10: trying $CIFAR_URL"
  download "$CIFAR_URL" "$tmp/cifar-10-binary.tar.gz" 900 || return 1
  tar -xzf "$tmp/cifar-10-binary.tar.gz" -C "$tmp" || return 1
  cifar_valid "$tmp/cifar-10-batches-bin" || return 1
  mkdir -p "$out/cifar-10-batches-bin"
  mv "$tmp"/cifar-10-batches-bin/* "$out/cifar-10-batches-bin/"
}

cifar_from_mirror() {
  local out="$1" m
  mirror_dir || return 1
  m="$MIRROR"
  # A mirror holding the binaries themselves is simply copied.
  if cifar_valid "$m/cifar10/cifar-10-batches-bin"; then
    say "cifar10: copying binaries from mirror $m/cifar10"
    mkdir -p "$out/cifar-10-batches-bin"
    cp "$m"/cifar10/cifar-10-batches-bin/* "$out/cifar-10-batches-bin/"
    chmod -R u+w "$out/cifar-10-batches-bin"
    return 0
  fi
  [ -x "$m/cifar10/make-bin.sh" ] || [ -f "$m/cifar10/make-bin.sh" ] ||
    die "mirror $m/cifar10 has neither cifar-10-batches-bin/ nor make-bin.sh"
  say "cifar10: decoding the JPEG copy in $m/cifar10 (about a minute)"
  # make-bin.sh wants a python3 with Pillow; Debian's /usr/bin/python3 has it
  # once python3-pil is installed, while a pyenv python3 first on PATH may not.
  PATH="/usr/bin:$PATH" bash "$m/cifar10/make-bin.sh" "$out" ||
    die "cifar10: make-bin.sh failed (needs python3 with Pillow: apt-get install -y python3-pil)"
}

fetch_cifar10() {
  local out="$1/cifar10" dir
  dir="$out/cifar-10-batches-bin"
  if cifar_valid "$dir"; then
    say "cifar10: $dir already complete"
    return 0
  fi
  mkdir -p "$out"
  make_tmp "$out"
  if cifar_from_web "$out" "$FETCH_TMP" || cifar_from_mirror "$out"; then
    cifar_valid "$dir" || die "cifar10: $dir is incomplete after fetching (each batch must be $CIFAR_FILE_BYTES bytes)"
    say "cifar10: wrote $dir"
    return 0
  fi
  die "cifar10: could not download $CIFAR_URL and no mirror is set;" \
      "set DC_DATA_MIRROR to a folder with cifar10/ (e.g. DC_DATA_MIRROR=../shared/data)"
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
dest="${2:-data}"
case "$1" in
  mnist) fetch_mnist "$dest" ;;
  cifar10) fetch_cifar10 "$dest" ;;
  -h|--help) usage ;;
  *) echo "fetch-data: unknown data set '$1'" >&2; usage ;;
esac
