#!/usr/bin/env bash
# How the weights staged in hub/ are trained: configs/elpv_hub.yaml, one train.py run per architecture and seed,
# side by side (THREADS_PER_RUN CPU threads each; on a GPU they share it), then the gradient-conflict diagnostics
# of each run's best checkpoint against its initialisation. Runs land in runs/elpv_hub/<arch>.s<seed>.
#
#   ARCHS="csba_squeeze csba_squeeze_sum" SEEDS="0" THREADS_PER_RUN=1 bash hub/train.sh
#   python -m timm_csba.hub export runs/elpv_hub/csba_squeeze.s0 --to hub/csba_squeeze.elpv --seeds runs/elpv_hub/csba_squeeze.s*
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS=${ARCHS:-csba_squeeze csba_squeeze_sum csba_squeeze_shared csba_squeeze_gradnorm csba_squeeze_heads}
SEEDS=${SEEDS:-0}
DIAGNOSE_SEEDS=${DIAGNOSE_SEEDS:-0}
THREADS_PER_RUN=${THREADS_PER_RUN:-1}
mkdir -p runs/elpv_hub

pids=()
for arch in $ARCHS; do
  for seed in $SEEDS; do
    run=runs/elpv_hub/$arch.s$seed
    accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
      train.py --config configs/elpv_hub.yaml --model "$arch" --seed "$seed" --output-dir "$run" --overwrite \
      --threads "$THREADS_PER_RUN" \
      >"$run.log" 2>&1 &
    pids+=($!)
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" -eq 0 ] || { echo "a training run failed; see runs/elpv_hub/*.log" >&2; exit 1; }

for arch in $ARCHS; do
  for seed in $DIAGNOSE_SEEDS; do
    run=runs/elpv_hub/$arch.s$seed
    [ -d "$run/best" ] || continue
    python -m timm_csba.diagnose --model-dir "$run/best" --compare init --num-workers 1 --out "$run/diagnostics" \
      >"$run.diagnose.log" 2>&1 &
  done
done
wait
grep -h '^{"accuracy"' runs/elpv_hub/*.log || true
