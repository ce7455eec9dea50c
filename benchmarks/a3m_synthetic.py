"""A3M's ablation on the synthetic creatures: Baseline-1, Baseline-2 and A3M, same backbone and steps.

  python benchmarks/a3m_synthetic.py [--steps 600] [--seed 0] [--workdir /tmp/a3m_bench]
      [--methods baseline1,baseline2,a3m] [--set optimizer.learning_rate=0.025 ...]
      [--set_a3m a3m.attention_norm=batchnorm ...]

Each method trains in its own `python -m launch.train` process (ResNet-18 at width 0.25, 64 px,
batch 32, the settings of configs/baseline.py and configs/a3m.py:dataset=synthetic) and is scored
on the 100 held-out classes (the checkpoint chosen on the validation classes). Prints one JSON
line per method: test Recall@1/2/4/8, NMI, attribute accuracy (A3M variants only), the validation
Recall@1 of the chosen checkpoint (what model selection saw) and wall time.
`--set KEY=VALUE` passes `--config.KEY=VALUE` to every run, `--set_a3m KEY=VALUE` to the A3M
runs only (Baseline-2, Att-1, Att-2, A3M). Without them each method runs its config's defaults:
learning rate 0.05 for Baseline-1, 0.025 for the A3M variants (configs/a3m.py says why).
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {  # name -> config argument (Baseline-1 is the plain classification baseline)
    "baseline1": "configs/baseline.py:dataset=synthetic",
    "baseline2": "configs/a3m.py:dataset=synthetic,variant=baseline2",
    "att1": "configs/a3m.py:dataset=synthetic,variant=att1",
    "att2": "configs/a3m.py:dataset=synthetic,variant=att2",
    "a3m": "configs/a3m.py:dataset=synthetic,variant=a3m",
}


def run(name: str, steps: int | None, seed: int, workdir: str, settings: list[str]) -> dict:
  """Trains and scores one method; `settings` are its KEY=VALUE config overrides."""
  args = [sys.executable, "-m", "launch.train", "--config", METHODS[name], "--workdir", workdir,
          f"--config.seed={seed}"]
  if steps:
    args.append(f"--config.total_steps={steps}")
  args += [f"--config.{s}" for s in settings]
  start = time.perf_counter()
  result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if result.returncode:
    raise RuntimeError(f"{name} failed ({' '.join(args)}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
  test = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")][-1]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    val = [line for line in map(json.loads, f) if line["split"] == "val" and line["step"] == test["checkpoint_step"]]
  keys = ("recall@1", "recall@2", "recall@4", "recall@8", "nmi", "attribute_accuracy", "checkpoint_step")
  return {"method": name, "seed": seed, **{k: test.get(k) for k in keys}, "val_recall@1": val[-1]["recall@1"],
          "wall_s": round(wall, 1), "settings": settings}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=None, help="total steps (default: the configs' 600)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workdir", default="/tmp/a3m_bench", help="one sub-folder per method (must not exist)")
  parser.add_argument("--methods", default="baseline1,baseline2,a3m", help=f"comma-separated, of {sorted(METHODS)}")
  parser.add_argument("--set", action="append", default=[], help="KEY=VALUE config override for every run")
  parser.add_argument("--set_a3m", action="append", default=[], help="KEY=VALUE config override for the A3M runs")
  args = parser.parse_args()
  for name in args.methods.split(","):
    if name not in METHODS:
      parser.error(f"--methods: unknown {name!r}; expected some of {sorted(METHODS)}")
    workdir = os.path.join(args.workdir, name)
    if os.path.exists(workdir):
      parser.error(f"{workdir} exists: a run there would resume; pass a new --workdir")
    settings = args.set + (args.set_a3m if name != "baseline1" else [])
    print(json.dumps(run(name, args.steps, args.seed, workdir, settings)), flush=True)


if __name__ == "__main__":
  main()
