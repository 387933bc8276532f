#!/usr/bin/env bash
# cli_torch_roundtrip.sh BUILD_DIR SOURCE_DIR: LeNet-300-100 trained in
# PyTorch, imported from .npz and .safetensors, compressed by dctrain
# --stages compress (no training) to at least 40x, exported with dcexport and
# loaded back with load_state_dict: PyTorch's count of correct test images
# must equal dceval's on the .dcm (tests/torch_roundtrip.py does the work).
# Shortened for CTest (2 PyTorch epochs, 1 retraining epoch per prune round);
# the full flow is the script with its defaults.  Exit 77 without torch
# (Debian's python3-torch for /usr/bin/python3) or without MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_torch_roundtrip "${1:?usage: cli_torch_roundtrip.sh BUILD_DIR SOURCE_DIR}" "${2:?}" dctrain dcexport dceval
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "cli_torch_roundtrip: no torch or numpy for /usr/bin/python3: skipped"
    exit 77
fi
/usr/bin/python3 "$S/tests/torch_roundtrip.py" --build "$B" --data "$MNIST" --work "$T/work" \
    --config "$S/configs/lenet300_mnist_dc.ini" --epochs 2 --retrain-epochs 1 --min-rate 40
rc=$?
[ $rc = 0 ] || [ $rc = 77 ] || fail "torch_roundtrip.py exited $rc"
[ $rc != 77 ] || exit 77
cli_finish cli_torch_roundtrip
