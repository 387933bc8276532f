#!/usr/bin/env bash
# cli_interop.sh BUILD_DIR SOURCE_DIR: dcexport and dctrain --init with .npz and
# .safetensors.  dctrain makes a tiny compressed model (check_cli.sh's small
# job: two fc layers, 500 images, one epoch per stage); dcexport writes it
# to both containers; dctrain --init imports each into a dense network with
# only the encode stage, which must reach exactly the decoded accuracy of
# the original file.  Usage errors
# exit 2, damaged or mismatched files exit 1 with one line naming the file.
# With numpy (/usr/bin/python3): the arrays of the .npz equal those of the
# .safetensors, masks are 0/1 and codebook[codes] gives the kept weights.
# With torch: the weights load into a torch.nn model by load_state_dict and it
# reproduces dceval's accuracy; without them those parts print "skipped".
# Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_interop "${1:?usage: cli_interop.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_interop.sh BUILD_DIR SOURCE_DIR}" dctrain dcexport dceval

# the small job compressed; and the same network, encode only: what --init imports into
small_job_ini "[prune]" "method = sparsity" "sparsity_fc = 0.8" "rounds = 1" "retrain_epochs = 1" \
    "retrain_lr = 0.01" "" "[quantize]" "bits_fc = 4" "finetune_epochs = 1" "" "[encode]" "file = tiny.dcm" >tiny.ini
small_job_ini "[encode]" "file = back.dcm" >import.ini
sed 's/^outputs = 30$/outputs = 20/' import.ini >narrow.ini
# dctrain on the CPU (the small job leaves the device to auto): the decoded
# accuracies compared below all come from one backend
dct() { "$B/dctrain" --device cpu "$@"; }

run 0 dctrain dct tiny.ini --out run --quiet || { echo "cli_interop: no model to test"; exit 1; }
M=run/tiny.dcm
for ext in npz safetensors; do
    if ! "$B/dcexport" "$M" "probe.$ext" 2>err && grep -q "built without" err; then
        echo "cli_interop: $(cat err): skipped"
        exit 77
    fi
done
WANT=$(sed -n 's/.*"stage": "encode".*"test_accuracy": \([0-9.]*\),.*/\1/p' run/summary.json)

# ---- usage errors ----
run 2 no_args "$B/dcexport" && one_line no_args "expected MODEL.dcm and OUT"
run 2 one_arg "$B/dcexport" "$M" && one_line one_arg "got 1 argument"
run 2 three_args "$B/dcexport" "$M" a.npz b.npz && one_line three_args "got 3 arguments"
run 2 bad_ext "$B/dcexport" "$M" out.onnx && one_line bad_ext "out\.onnx: unknown output format"
run 2 bogus "$B/dcexport" --bogus "$M" a.npz && one_line bogus -- "--bogus"
run 0 help "$B/dcexport" --help && grep -q "usage: dcexport" out || fail "dcexport --help: no usage"
run 1 missing "$B/dcexport" nope.dcm a.npz && one_line missing "^dcexport: nope\.dcm: cannot open"
head -c 100 "$M" >cut.dcm
run 1 cut_dcm "$B/dcexport" cut.dcm a.npz && one_line cut_dcm "^dcexport: cut\.dcm: .*truncated"
[ ! -e a.npz ] || fail "dcexport wrote a.npz from a damaged model"

# ---- export, and import into a fresh dense network ----
for ext in npz safetensors; do
    run 0 "export $ext" "$B/dcexport" "$M" "m.$ext"
    [ -s "m.$ext" ] || fail "dcexport wrote no m.$ext"
    run 0 "init $ext" dct import.ini --init "m.$ext" --out "back_$ext" --quiet
    GOT=$(sed -n 's/.*"stage": "encode".*"test_accuracy": \([0-9.]*\),.*/\1/p' "back_$ext/summary.json" 2>/dev/null)
    [ -n "$WANT" ] && [ "$GOT" = "$WANT" ] ||
        fail "dctrain --init m.$ext: decoded accuracy '$GOT', the exported model had '$WANT'"
    # damaged and mismatched files: one line naming the file, exit 1
    SIZE=$(wc -c <"m.$ext")
    for cut in 0 5 8 40 $((SIZE / 2)) $((SIZE - 1)); do
        head -c "$cut" "m.$ext" >"bad.$ext"
        run 1 "init $ext cut to $cut" dct import.ini --init "bad.$ext" --out bad_run --quiet &&
            one_line "init $ext cut to $cut" "^dctrain: bad\.$ext: "
    done
    run 1 "init $ext narrow" dct narrow.ini --init "m.$ext" --out bad_run --quiet &&
        one_line "init $ext narrow" "^dctrain: m\.$ext: tensor fc1\.weight has shape \[30, 784\], parameter fc1\.weight expects \[20, 784\]"
done
printf '\377\377\377\377\0\0\0\0{}' >huge.safetensors
run 1 "init header size" dct import.ini --init huge.safetensors --out bad_run --quiet &&
    one_line "init header size" "^dctrain: huge\.safetensors: JSON header size 4294967295 is beyond the file"
run 1 "init missing" dct import.ini --init nope.npz --out bad_run --quiet &&
    one_line "init missing" "^dctrain: nope\.npz: "

# ---- --stages: compress an imported model in one command ----
run 0 "stages help" dct --help && grep -q -- "--stages LIST" out || fail "dctrain --help: no --stages"
run 2 "stages bogus" dct tiny.ini --stages prune,bogus --out bad_run &&
    one_line "stages bogus" "^dctrain: --stages prune,bogus: unknown stage 'bogus'; use a comma list of train, prune"
run 2 "stages empty" dct tiny.ini --stages "" --out bad_run && one_line "stages empty" "unknown stage ''"
run 2 "stages no section" dct import.ini --init m.npz --stages quantize --out bad_run --quiet &&
    one_line "stages no section" "^dctrain: --stages quantize: import\.ini has no \[quantize\] section"
run 0 "stages compress" dct tiny.ini --init m.npz --stages compress --out comp --quiet
STAGES=$(grep -o '"stage": "[a-z0-9-]*"' comp/summary.json | sed 's/.*: "//; s/"//' | tr '\n' ' ')
[ "$STAGES" = "prune-1 quantize encode " ] || fail "--init m.npz --stages compress ran: $STAGES"
for w in init prune-1 clustered quantize; do
    [ -s "comp/weights_$w.csv" ] && grep -q "\"weights_$w.csv\"" comp/summary.json ||
        fail "--stages compress: weights_$w.csv missing or not listed in summary.json"
done
[ ! -e comp/weights_train.csv ] || fail "--stages compress wrote weights_train.csv"
grep -q '^fc1.weight,centroid,' comp/weights_quantize.csv && grep -q '^fc1.weight,zero,0,0,' comp/weights_prune-1.csv ||
    fail "weights csv rows: $(head -3 comp/weights_quantize.csv)"
run 0 "stages train" dct tiny.ini --stages train,encode --out trenc --quiet
STAGES=$(grep -o '"stage": "[a-z0-9-]*"' trenc/summary.json | sed 's/.*: "//; s/"//' | tr '\n' ' ')
[ "$STAGES" = "train encode " ] || fail "--stages train,encode ran: $STAGES"

# ---- [init] map: tensor names in neither our scheme nor our order ----
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 -c '
import numpy as np
z = np.load("m.npz")
np.savez("wrapped.npz", **{"head.extra": np.zeros(3, np.float32), "net.b2": z["fc2.bias"], "net.w2": z["fc2.weight"],
                           "net.b1": z["fc1.bias"], "net.w1": z["fc1.weight"]})' || fail "numpy: savez failed"
    run 1 "map none" dct import.ini --init wrapped.npz --out bad_run --quiet &&
        one_line "map none" "^dctrain: wrapped\.npz: missing tensor fc1\.weight: .*\[init\] map"
    MAP="init.map=net.w1:fc1.weight, net.b1:fc1.bias, net.w2:fc2.weight, net.b2:fc2.bias, head.extra:-"
    run 0 "map" dct import.ini --init wrapped.npz --set "$MAP" --out back_map
    grep -q "paired by name after \[init\] map" err && grep -Eq "net\.b2 +\[10\] +-> fc2\.bias" err &&
        grep -Eq "head\.extra +dropped by \[init\] map" err || fail "--init with [init] map: no pairing table: $(head -c 400 err)"
    GOT=$(sed -n 's/.*"stage": "encode".*"test_accuracy": \([0-9.]*\),.*/\1/p' back_map/summary.json 2>/dev/null)
    [ "$GOT" = "$WANT" ] || fail "dctrain --init wrapped.npz with map: decoded accuracy '$GOT', exported '$WANT'"
    run 2 "map bad entry" dct import.ini --init wrapped.npz --set "init.map=net.w1" --out bad_run --quiet &&
        one_line "map bad entry" "^dctrain: wrapped\.npz: \[init\] map: entry 'net\.w1' is not FILE_NAME:OUR_NAME"
    run 2 "map bad param" dct import.ini --init wrapped.npz --set "init.map=net.w1:fc7.weight" --out bad_run --quiet &&
        one_line "map bad param" "the network has no parameter 'fc7\.weight'"
    run 2 "map bad key" dct import.ini --init wrapped.npz --set "init.mapping=x" --out bad_run --quiet &&
        one_line "map bad key" "init\.mapping=x: unknown key; \[init\] takes map"
else
    echo "cli_interop: [init] map check skipped (no numpy for /usr/bin/python3)"
fi

# ---- the arrays as NumPy reads them ----
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - >py.out 2>&1 <<'EOF'
import json, struct, sys
import numpy as np
z = np.load("m.npz")
raw = open("m.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
meta = hdr.pop("__metadata__")
dt = {"F32": np.float32, "F64": np.float64, "U8": np.uint8}
st = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"])
      for k, v in hdr.items()}
bad = []
names = [k for k in z.files if not k.startswith("__")]
if sorted(names) != sorted(st):
    bad.append("names differ: %s vs %s" % (names, sorted(st)))
for k in names:
    if z[k].dtype != st[k].dtype or z[k].shape != st[k].shape or not np.array_equal(z[k], st[k]):
        bad.append("%s differs between the npz and the safetensors" % k)
if bytes(z["__network__"]).decode() != meta["network"] or bytes(z["__dataset__"]).decode() != "mnist":
    bad.append("network description differs")
if z["fc1.weight"].shape != (30, 784) or z["fc2.weight"].shape != (10, 30) or z["fc1.bias"].shape != (30,):
    bad.append("shapes: %s %s" % (z["fc1.weight"].shape, z["fc2.weight"].shape))
for w in ("fc1.weight", "fc2.weight"):
    m, c, cb = z[w + ".mask"], z[w + ".codes"], z[w + ".codebook"]
    if not np.all((m == 0) | (m == 1)) or not np.array_equal(np.where(m == 1, cb[c], 0), z[w]):
        bad.append(w + ": codebook[codes] * mask is not the weight")
print("\n".join(bad) if bad else "numpy check ok")
sys.exit(1 if bad else 0)
EOF
    [ $? = 0 ] || fail "numpy: $(cat py.out)"
    # nn.Sequential's names ("0.weight", ...), deflated by savez_compressed, float64:
    # paired by order, with the pairing printed
    /usr/bin/python3 -c '
import numpy as np
z = np.load("m.npz")
np.savez_compressed("seq.npz", **{"0.weight": z["fc1.weight"].astype(np.float64), "0.bias": z["fc1.bias"],
                                  "2.weight": z["fc2.weight"], "2.bias": z["fc2.bias"]})' ||
        fail "numpy: savez_compressed failed"
    run 0 "init seq.npz" dct import.ini --init seq.npz --out back_seq
    grep -q "paired by order" err && grep -Eq "2\.bias +\[10\] +-> fc2\.bias" err ||
        fail "dctrain --init seq.npz: no pairing table: $(head -c 300 err)"
    GOT=$(sed -n 's/.*"stage": "encode".*"test_accuracy": \([0-9.]*\),.*/\1/p' back_seq/summary.json 2>/dev/null)
    [ "$GOT" = "$WANT" ] || fail "dctrain --init seq.npz: decoded accuracy '$GOT', the exported model had '$WANT'"
else
    echo "cli_interop: numpy check skipped (no numpy for /usr/bin/python3)"
fi

# ---- PyTorch: load_state_dict and the same test accuracy as dceval ----
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    run 0 dceval "$B/dceval" "$M" --data "$MNIST" --device cpu --threads 1
    ACC=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' out)
    MNIST="$MNIST" /usr/bin/python3 - >torch.out 2>&1 <<'EOF'
import gzip, os
import numpy as np, torch
d = os.environ["MNIST"]
def idx(name):
    p = os.path.join(d, name)
    raw = gzip.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
    return raw
img = np.frombuffer(idx("t10k-images-idx3-ubyte"), np.uint8, offset=16).reshape(-1, 784)
lab = np.frombuffer(idx("t10k-labels-idx1-ubyte"), np.uint8, offset=8)
z = np.load("m.npz")
model = torch.nn.Sequential()
model.add_module("fc1", torch.nn.Linear(784, 30))
model.add_module("relu", torch.nn.ReLU())
model.add_module("fc2", torch.nn.Linear(30, 10))
model.load_state_dict({k: torch.from_numpy(z[k].copy()) for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")})
x = torch.from_numpy(img.astype(np.float32))
x = (x / np.float32(255.0) - np.float32(0.1307)) / np.float32(0.3081)
with torch.no_grad():
    pred = model(x).argmax(1).numpy()
print("torch accuracy %.2f%%" % (100.0 * (pred == lab).sum() / len(lab)))
EOF
    [ $? = 0 ] || fail "torch: $(tail -3 torch.out)"
    TACC=$(sed -n 's/^torch accuracy \([0-9.]*\)%$/\1/p' torch.out)
    [ -n "$ACC" ] && [ "$TACC" = "$ACC" ] || fail "torch: accuracy '$TACC'% on the exported weights, dceval '$ACC'%"
    echo "cli_interop: PyTorch load_state_dict: test accuracy $TACC% (dceval $ACC%)"
else
    echo "cli_interop: PyTorch check skipped (no torch for /usr/bin/python3)"
fi

cli_finish cli_interop
