#!/bin/bash
# Runs on the device machine (third call): rebuild the base, install the pinned transformers/peft and
# stance, then train configs/default.yaml once per NAME with that run's --set overrides, all runs at
# once on the one GPU (a run alone leaves it mostly idle: 74 ms a step is Python and launch overhead).
#   DEADLINE=540 bash .dp3/train.sh long3k "--set training.max_steps=3000" long4k "--set training.max_steps=4000"
# Each run's overrides are split on spaces: write list values without them ([q,v], not [q, v]).
# Each run's adapter, metadata and log come back in $OUT as NAME.adapter.safetensors, NAME.meta.tar,
# NAME.log. A run still going at DEADLINE seconds (from the start of this script) is stopped, and its
# newest checkpoint comes back instead (NAME.checkpoint.tar, no optimizer state), to be finished on
# the CPU with `python -m stance.training.finalize_checkpoint`.
# Budget on an H200: setup takes 11-19 s; alone, 1,500 steps took 102 s of training; two runs at once
# (3,000 and 3,600 steps, an evaluation every 1,500 / 1,800) trained in 261 s and 322 s.
set -u
T0=$(date +%s)
DEADLINE=${DEADLINE:-540}
if [ $# -eq 0 ] || [ $(( $# % 2 )) -ne 0 ]; then
  echo "usage: train.sh NAME \"--set key=value ...\" [NAME \"--set ...\"]... (got $# arguments)" >&2; exit 2
fi
source .dp3/setup.sh
echo "setup done after $(( $(date +%s) - T0 )) s"

names=()
set -f  # overrides such as model.lora.target_modules=[q, v] are words, not file patterns
while [ $# -ge 2 ]; do
  name=$1; overrides=$2; shift 2; names+=("$name")
  # shellcheck disable=SC2086  # the overrides are words on purpose
  python3 -m stance train --config configs/default.yaml --set model.base=runs/bases/all-mpnet-base-v2 \
    --set "training.output_dir=/tmp/run-$name" $overrides > "$OUT/$name.log" 2>&1 &
  echo $! > "/tmp/pid-$name"
done
set +f
while :; do
  running=0
  for name in "${names[@]}"; do kill -0 "$(cat /tmp/pid-$name)" 2>/dev/null && running=1; done
  [ $running = 0 ] && break
  if [ $(( $(date +%s) - T0 )) -ge "$DEADLINE" ]; then
    for name in "${names[@]}"; do kill "$(cat /tmp/pid-$name)" 2>/dev/null && echo "$name stopped at the deadline"; done
    wait; break
  fi
  sleep 2
done
for name in "${names[@]}"; do
  run=/tmp/run-$name
  grep -E "eval at step .*mean|train_runtime|Error" "$OUT/$name.log" | tail -8 | sed "s/^/$name: /"
  if [ -f "$run/adapter/adapter_model.safetensors" ] && [ -f "$run/adapter/stance.json" ]; then
    cp "$run/adapter/adapter_model.safetensors" "$OUT/$name.adapter.safetensors"
    tar -C "$run" -cf "$OUT/$name.meta.tar" adapter/adapter_config.json adapter/stance.json stance.json config.json
  else
    # The newest complete checkpoint (Trainer writes trainer_state.json last), by step number.
    newest=$(for d in "$run"/checkpoints/checkpoint-*; do [ -f "$d/trainer_state.json" ] && echo "${d##*-} $d"; done \
      | sort -n | tail -1 | cut -d' ' -f2-)
    [ -n "$newest" ] && tar -C "$(dirname "$newest")" -cf "$OUT/$name.checkpoint.tar" --exclude=optimizer.pt \
      --exclude=scheduler.pt --exclude='rng_state*' "$(basename "$newest")" && echo "$name: sent $(basename "$newest")"
  fi
done
echo "done at $(( $(date +%s) - T0 )) s"
