#!/usr/bin/env bash
# What only an accelerator shows, in one run of under 9 minutes on one GPU, into one JSON file:
#   bash benchmarks/accelerator.sh [OUT_DIR]               # on the GPU host; OUT_DIR/accelerator.json
#   SIZE=tiny bash benchmarks/accelerator.sh /tmp/acc      # the same checks at tiny sizes (CPU, 6 min)
#   CHECKS="knn input_pipeline" bash benchmarks/accelerator.sh    # only these checks: step_METHOD_bf16,
#       step_baseline_bf16_torch, step_baseline_f32, knn, input_pipeline, decoded_pipeline
# In order of value, each in its own process under its own time limit (a failed or timed-out check
# is recorded with its error and the rest still run; all end by DEADLINE_S seconds):
#   1. every method's jitted training step in bfloat16, ResNet-50 at 224 px, batch 64
#      (benchmarks/train_step.py --side jaxret: images/s, compile s, peak device memory, XLA's FLOPs;
#      MFU against the device's dense bfloat16 peak), then the PyTorch baseline step beside it
#      (torch.compile, bf16 autocast) and the jaxret baseline in float32;
#   2. exact k-NN Recall@K at 1M x 1M 512-d embeddings (benchmarks/knn.py --engine jaxret);
#   3. the host pipeline (benchmarks/input_pipeline.py: JPEG decode + augmentation, 0 and all cores)
#      against the images/s the baseline step needs; then data.pipeline="device" (decoded records:
#      the host's images/s, and the jitted augmentation's images/s on the accelerator).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/accelerator}
mkdir -p "$out"
lines="$out/accelerator.jsonl"
logs=$(mktemp -d)  # each check's stdout and stderr
: >"$lines"
if [ "${SIZE:-full}" = tiny ]; then
  backbone=resnet18 size=32 batch=4 steps=2 knn_n=2000 images=48 batches=4 workers=0,2 limit=900 deadline=${DEADLINE_S:-3000}
else
  backbone=resnet50 size=224 batch=64 steps=10 knn_n=1000000 images=512 batches=96 workers="0,$(nproc)" limit=150 \
    deadline=${DEADLINE_S:-540}
fi
start=$SECONDS

# check NAME COMMAND...: runs COMMAND under the time limit (or until the deadline) and appends {"check": NAME, "result": its
# last stdout line as JSON} (or {"check", "error"}) to the JSON lines.
check() {
  local name=$1
  shift
  if [ -n "${CHECKS:-}" ] && [[ " $CHECKS " != *" $name "* ]]; then
    return
  fi
  local left=$((deadline - (SECONDS - start)))
  if ((left < 30)); then
    echo "{\"check\": \"$name\", \"error\": \"not run: within 30 s of the ${deadline} s deadline\"}" >>"$lines"
    return
  fi
  local t0=$SECONDS
  timeout "$((left < limit ? left : limit))" "$@" >"$logs/$name.out" 2>"$logs/$name.err"
  local rc=$?
  python3 - "$name" "$rc" "$((SECONDS - t0))" "$logs" >>"$lines" <<'EOF'
import json, sys
name, rc, seconds, logs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stdout = open(f"{logs}/{name}.out").read().strip().splitlines()
record = {"check": name, "seconds": seconds}
try:
  record["result"] = json.loads(stdout[-1])
except (IndexError, ValueError):
  record["error"] = f"exit {rc}" + (" (timed out)" if rc == 124 else "") + ": " + open(f"{logs}/{name}.err").read()[-1500:]
print(json.dumps(record))
EOF
  echo "$name: $((SECONDS - t0)) s, exit $rc" >&2
}

step="--backbone $backbone --image_size $size --batch $batch --warmup 2 --steps $steps"
for method in baseline a3m deml vapnet a2net midattr; do
  check "step_${method}_bf16" python3 benchmarks/train_step.py --side jaxret --method "$method" $step --dtype bfloat16
done
check step_baseline_bf16_torch python3 benchmarks/train_step.py --side torch --method baseline $step --dtype bfloat16
check step_baseline_f32 python3 benchmarks/train_step.py --side jaxret --method baseline $step --dtype float32
check knn python3 benchmarks/knn.py --engine jaxret --n "$knn_n"
check input_pipeline python3 benchmarks/input_pipeline.py --num_workers "$workers" --images "$images" \
  --batches "$batches" --warmup 32 --image_size "$size"
check decoded_pipeline python3 benchmarks/input_pipeline.py --num_workers 0 --images "$images" \
  --batches "$batches" --warmup 32 --image_size "$size"
rm -r "$logs"

python3 - "$lines" "$out/accelerator.json" <<'EOF'
import json, sys
lines, path = sys.argv[1], sys.argv[2]
checks = {r.pop("check"): r for r in map(json.loads, open(lines))}
need = checks.get("step_baseline_bf16", {}).get("result", {}).get("img_s")
pipeline = checks.get("input_pipeline", {}).get("result", {})
if need and pipeline.get("jaxret_img_s"):
  checks["pipeline_vs_step"] = {"host_img_s": pipeline["jaxret_img_s"], "baseline_step_img_s": round(need, 1),
                                "fraction_fed": round(pipeline["jaxret_img_s"] / need, 3)}
decoded = checks.get("decoded_pipeline", {}).get("result", {})
if need and decoded.get("jaxret_img_s"):
  checks["decoded_pipeline_vs_step"] = {
      "host_img_s": decoded["jaxret_img_s"], "device_augment_img_s": decoded["decoded"]["device_augment_img_s_here"],
      "baseline_step_img_s": round(need, 1), "fraction_fed": round(decoded["jaxret_img_s"] / need, 3)}
json.dump(checks, open(path, "w"), indent=1)
print(json.dumps({name: ("ok" if "result" in r or name.endswith("_vs_step") else "error") for name, r in checks.items()}))
EOF
