#!/bin/bash
# Runs on the device machine (third call): rebuild the base, install the pinned transformers/peft and
# stance, train configs/default.yaml with the given --set overrides, and copy the adapter to $OUT.
#   bash .dp3/train.sh --set training.max_steps=2400 --set training.eval_steps=600
# Budget: 1,500 steps took 102 s of training and 200 s in all on an H200; setup takes 11-19 s.
set -u
T0=$(date +%s)
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=true
mkdir -p /tmp/p; [ -f /tmp/p/part_a ] || cp .dp1/part_a /tmp/p/; [ -f /tmp/p/part_b ] || cp .dp2/part_b /tmp/p/
cat /tmp/p/part_a /tmp/p/part_b > /tmp/base.q.safetensors || exit 3
rm -rf runs/bases/all-mpnet-base-v2 && mkdir -p runs/bases && cp -r .dp3/basecfg runs/bases/all-mpnet-base-v2
python3 .dp3/transfer.py dequantize /tmp/base.q.safetensors runs/bases/all-mpnet-base-v2/model.safetensors || exit 4
tar -C /tmp -xJf .dp3/data.tar.xz && mkdir -p ../shared && ln -sfn /tmp/data ../shared/data || exit 5
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .dp3/*.whl || exit 6
python3 -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target /tmp/site . || exit 7
# PYTHONSAFEPATH: without it the checkout's stance/ shadows the installed package (model/ is mapped in).
export PYTHONPATH=/tmp/site STANCE_DATA_DIR=/tmp/data PYTHONSAFEPATH=1
echo "setup done after $(( $(date +%s) - T0 )) s"
python3 -m stance train --config configs/default.yaml --set model.base=runs/bases/all-mpnet-base-v2 \
  --set training.output_dir=/tmp/run "$@" > "$OUT/train.log" 2>&1
echo "train rc $? at $(( $(date +%s) - T0 )) s"; grep -E "eval at step|train_runtime|Error" "$OUT/train.log" | tail -20
cp /tmp/run/adapter/adapter_model.safetensors "$OUT/adapter_model.safetensors"
tar -C /tmp/run -cf "$OUT/meta.tar" adapter/adapter_config.json adapter/stance.json stance.json config.json
echo "done at $(( $(date +%s) - T0 )) s"
