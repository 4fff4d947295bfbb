#!/bin/bash
# Runs on the device machine (third call, after the two base parts): GPU warm-loop pairs/s of the
# embedded default against the transformers pipeline and sentence-transformers' CrossEncoder (fp32,
# their default, and bf16 weights), same merged model, same rows, same batch size.
#   bash .dp3/bench.sh --batch-size 128 --tile 10
# The adapter (pack copies model/default into .dp3/default) is applied to the base rebuilt from its
# int8 transfer copy: speed does not depend on the weights' values; the labels can differ slightly.
# $OUT gets throughput_gpu.json.
set -u
T0=$(date +%s)
source .dp3/setup.sh
rm -rf /tmp/default && cp -r .dp3/default /tmp/default
python3 - <<'PY' || exit 8
import json, os
base = os.path.abspath("runs/bases/all-mpnet-base-v2")
for name, key in (("adapter_config.json", "base_model_name_or_path"), ("stance.json", "base_model")):
    path = os.path.join("/tmp/default", name)
    record = json.load(open(path))
    record[key] = base
    json.dump(record, open(path, "w"))
PY
echo "setup done after $(( $(date +%s) - T0 )) s"
python3 benchmarks/throughput.py --model /tmp/default --device cuda \
  --systems pipeline crossencoder crossencoder-bf16 stance-torch --output "$OUT/throughput_gpu.json" "$@"
echo "done at $(( $(date +%s) - T0 )) s"
