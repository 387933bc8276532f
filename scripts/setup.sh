#!/usr/bin/env bash
# setup.sh: install build dependencies (Debian/Ubuntu), fetch MNIST and
# CIFAR-10 into data/, and build into build/.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
for p in cmake gcc make zlib1g-dev libopenblas-openmp-dev libzip-dev libcjson-dev python3-pil xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need
fi
# optional: scripts/dcplot.py draws a run's figures with matplotlib (and numpy)
opt=""
for p in python3-matplotlib python3-numpy; do
  dpkg -s "$p" >/dev/null 2>&1 || opt="$opt $p"
done
if [ -n "$opt" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $opt ||
    echo "setup: optional$opt not installed (only scripts/dcplot.py needs them)" >&2
fi
scripts/fetch-data.sh mnist data
scripts/fetch-data.sh cifar10 data || echo "setup: CIFAR-10 not fetched (only vgg19_cifar.ini needs it)" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: built build/dctrain; try: build/dctrain configs/lenet300_mnist.ini"
