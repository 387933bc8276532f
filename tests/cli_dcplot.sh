#!/usr/bin/env bash
# cli_dcplot.sh BUILD_DIR SOURCE_DIR: scripts/dcplot.py on a small run.
# dctrain trains, prunes (2 rounds), quantizes and encodes a tiny fc network
# on 1,000 images and writes weights_<stage>.csv; a sensitivity scan adds
# sensitivity.csv; dcplot.py must then write the four figures as PNG and SVG
# and list them in summary.json (which stays valid JSON, one "figures" key
# after two runs).  Missing or damaged input: one line, exit 1; usage: exit 2.
# Exit 77 without matplotlib for /usr/bin/python3 or without MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_dcplot "${1:?usage: cli_dcplot.sh BUILD_DIR SOURCE_DIR}" "${2:?}" dctrain
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    echo "cli_dcplot: no matplotlib for /usr/bin/python3 (apt-get install python3-matplotlib): skipped"
    exit 77
fi
P="/usr/bin/python3 $S/scripts/dcplot.py"
printf '%s\n' "[data]" "set = mnist" "dir = $MNIST" "train_limit = 1000" "test_limit = 1000" \
    "[train]" "device = cpu" "epochs = 2" "batch = 50" "lr = 0.05" "threads = 1" \
    "[prune]" "method = sparsity" "sparsity_fc = 0.8" "rounds = 2" "retrain_epochs = 1" "retrain_lr = 0.01" \
    "[quantize]" "bits_fc = 4" "finetune_epochs = 1" "[encode]" "file = small.dcm" \
    "[fc]" "outputs = 30" "activation = relu" "[fc]" "outputs = 10" >small.ini
run 0 dctrain "$B/dctrain" small.ini --out run --quiet || cli_finish cli_dcplot
for w in train prune-1 prune-2 clustered quantize; do
    [ -s "run/weights_$w.csv" ] || fail "dctrain wrote no weights_$w.csv"
done
[ ! -e run/weights_init.csv ] || fail "a run with a train stage wrote weights_init.csv"
# the snapshots add up: bins + zeros = all weights; 80% zeros after the last
# round; 16 shared values (4 bits) whose use counts are the kept weights
/usr/bin/python3 - >py.out 2>&1 <<'PY'
import csv, sys
def load(stage):
    d = {}
    for r in csv.DictReader(open("run/weights_%s.csv" % stage)):
        p = d.setdefault(r["param"], {"bin": 0, "zero": 0, "total": 0, "centroid": [], "lo": 0, "hi": 0})
        if r["kind"] == "centroid":
            p["centroid"].append(int(r["count"]))
        else:
            p[r["kind"]] += int(r["count"])
    return d
bad = []
for stage in ("train", "prune-2", "quantize"):
    for name, p in load(stage).items():
        if p["bin"] + p["zero"] != p["total"]:
            bad.append("%s %s: %d in bins + %d zeros != %d" % (stage, name, p["bin"], p["zero"], p["total"]))
q, pr = load("quantize"), load("prune-2")
if sorted(q) != ["fc1.weight", "fc2.weight"] or abs(pr["fc1.weight"]["zero"] / 23520 - 0.8) > 0.01:
    bad.append("params %s, fc1 zeros %s" % (sorted(q), pr.get("fc1.weight", {}).get("zero")))
for name, p in q.items():
    if len(p["centroid"]) != 16 or sum(p["centroid"]) != p["total"] - pr[name]["zero"]:
        bad.append("%s: %d centroids used by %d weights, %d kept" % (name, len(p["centroid"]), sum(p["centroid"]),
                                                                     p["total"] - pr[name]["zero"]))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
[ $? = 0 ] || fail "weights_<stage>.csv: $(head -c 400 py.out)"
run 0 sensitivity "$B/dctrain" small.ini --init run/checkpoint.bin --sensitivity --out sens --quiet &&
    cp sens/sensitivity.csv run/

run 0 dcplot $P run
for f in weights sensitivity training sizes; do
    [ "$(head -c 4 "run/$f.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ] || fail "run/$f.png is not a PNG"
    grep -q "<svg" "run/$f.svg" 2>/dev/null || fail "run/$f.svg is not an SVG"
done
run 0 "dcplot again" $P run --title "small net"
/usr/bin/python3 -c '
import json, sys
t = open("run/summary.json").read()
s = json.loads(t)
want = [f + "." + e for f in ("weights", "sensitivity", "training", "sizes") for e in ("png", "svg")]
sys.exit(0 if s["figures"] == want and t.count("\"figures\"") == 1 and s["stages"][-1]["stage"] == "encode" else 1)' ||
    fail "summary.json figures: $(tail -3 run/summary.json)"

# missing data: that figure is skipped with a line, the others still drawn
rm run/sensitivity.csv
run 0 "no sensitivity" $P run --formats png && grep -q "sensitivity: skipped: no sensitivity.csv" out ||
    fail "dcplot without sensitivity.csv: $(cat out err | head -c 300)"
# usage and damaged input
run 2 "no args" $P && one_line "no args" "^dcplot: usage: dcplot.py RUN_DIR"
run 2 "bad format" $P run --formats gif && one_line "bad format" "^dcplot: --formats gif: use png, svg or pdf"
run 1 "no run" $P nope && one_line "no run" "^dcplot: nope/summary.json: cannot read"
printf 'param,kind,lo,hi,count\nfc1.weight,bin,x,1,2\n' >run/weights_train.csv
run 1 "bad csv" $P run && one_line "bad csv" "^dcplot: run/weights_train.csv: column lo: 'x' is not a number"
printf '{"stages": [' >run/summary.json
run 1 "bad json" $P run && one_line "bad json" "^dcplot: run/summary.json: not valid JSON"
cli_finish cli_dcplot
