#!/usr/bin/env bash
# The flagship on a CUDA machine, in under 5 minutes, writing only under $OUT (default runs/gpu):
#   1. throughput of `make train-wgan`'s recipe at --trainer.precision=32-true and bf16-mixed (2 epochs each,
#      no evaluation): training seconds per epoch from time/train_s, and the bf16 / fp32 speed ratio;
#   2. the quality reached in 2 minutes of training (bf16-mixed; IS / FID / precision / recall after 30, 60 and
#      120 s, callbacks/timed_metrics.py; real test digits score IS 9.81);
#   3. where more than one GPU is present: one DDP run of 20 batches on 2 GPUs started by torchrun (NCCL), checked
#      to end with identical weights on both ranks.
# Safe on any CUDA machine: it trains nothing outside $OUT and stops with one line when no GPU is visible.
#   bash bench/gpu.sh            (after make install; LAB_DATA_DIR must hold MNIST/raw)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/gpu}
GPUS=$($PY -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$GPUS" = 0 ]; then echo "error: no CUDA GPU visible to torch" >&2; exit 2; fi
mkdir -p "$OUT"
$PY -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
FIT=($PY -m gan_lab fit --config configs/base.yaml --config configs/gan/wgan.yaml --trainer.accelerator=gpu
     --trainer.devices=1 --run.root="$OUT" --run.wandb=false --trainer.enable_progress_bar=false)

for precision in 32-true bf16-mixed; do
  timeout 100 "${FIT[@]}" --trainer.precision=$precision --trainer.max_epochs=2 \
    --model.init_args.metrics_every_n_epochs=0 --model.init_args.sample_every_n_epochs=0 \
    --run.name=throughput-$precision > "$OUT/throughput-$precision.log" 2>&1
done
$PY - "$OUT" <<'EOF'
import csv, sys
from pathlib import Path
out = Path(sys.argv[1])
speed = {}
for precision in ("32-true", "bf16-mixed"):
    (path,) = sorted((out / f"throughput-{precision}").glob("version_*/metrics.csv"))[-1:]
    seconds = [float(r["time/train_s"]) for r in csv.DictReader(path.open()) if r.get("time/train_s")]
    speed[precision] = seconds[-1] - seconds[0]  # the second epoch alone: no warm-up, no cuDNN autotuning
    print(f"{precision:>10}: {speed[precision]:.1f} s for one epoch of 860 batches of 64 "
          f"({860 / speed[precision]:.0f} batches/s)")
print(f"bf16-mixed / 32-true speed: {speed['32-true'] / speed['bf16-mixed']:.2f}x")
EOF

cat > "$OUT/timed.yaml" <<'EOF'
trainer:
  max_epochs: 1000
  callbacks:
    - class_path: callbacks.timed_metrics.TimedMetrics
      init_args: {at_seconds: [30, 60, 120]}
model:
  init_args: {metrics_every_n_epochs: 0, sample_every_n_epochs: 0}
EOF
timeout 170 "${FIT[@]}" --config "$OUT/timed.yaml" --trainer.precision=bf16-mixed --run.name=two-minutes \
  > "$OUT/two-minutes.log" 2>&1
$PY - "$OUT" <<'EOF'
import csv, sys
from pathlib import Path
(path,) = sorted((Path(sys.argv[1]) / "two-minutes").glob("version_*/metrics.csv"))[-1:]
rows = list(csv.DictReader(path.open()))
for budget in ("30s", "60s", "120s"):
    (row,) = [r for r in rows if r.get(f"eval/is_{budget}")]
    print(f"after {budget:>4} (bf16-mixed): IS {float(row[f'eval/is_{budget}']):.2f} (real 9.81), "
          f"FID {float(row[f'eval/fid_{budget}']):.2f}, precision {float(row[f'eval/precision_{budget}']):.3f}, "
          f"recall {float(row[f'eval/recall_{budget}']):.3f}, {float(row[f'eval/steps_{budget}']):.0f} optimizer steps")
EOF

if [ "$GPUS" -ge 2 ]; then
  mkdir -p "$OUT/ddp"
  timeout 120 $PY -m torch.distributed.run --nproc_per_node=2 --master_port=29517 tests/torchrun_fit.py "$OUT/ddp" \
    --config configs/base.yaml --config configs/gan/wgan.yaml --config configs/tiny.yaml --trainer.accelerator=gpu \
    --trainer.devices=2 --trainer.strategy=ddp --trainer.max_epochs=1 --trainer.limit_train_batches=20 \
    --run.root="$OUT" --run.name=ddp --run.wandb=false > "$OUT/ddp.log" 2>&1
  $PY - "$OUT/ddp" <<'EOF'
import json, sys
from pathlib import Path
ranks = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("rank*.json"))]
same = len(ranks) == 2 and ranks[0]["hash"] == ranks[1]["hash"]
print(f"DDP on 2 GPUs: world size {ranks[0]['world_size']}, {ranks[0]['strategy']}, "
      f"{ranks[0]['global_step']} optimizer steps, weights identical on both ranks: {same}")
sys.exit(0 if same else 1)
EOF
else
  echo "DDP: one GPU visible, the two-GPU check was not run"
fi
