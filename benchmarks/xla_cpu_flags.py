"""XLA:CPU flags against the baseline training step: one `train_step.py` line per flag set and case.

  python benchmarks/xla_cpu_flags.py                        # both standard cases
  python benchmarks/xla_cpu_flags.py --cases r18_64_b32

Each flag set runs `benchmarks/train_step.py`'s two sides for the baseline (the PyTorch side
again each time, so every ratio pairs measurements taken minutes apart, not an hour). The first
set, XNNPACK off, is XLA's default; jaxret turns XNNPACK on unless XLA_FLAGS says otherwise.
A flag set this jaxlib rejects prints its error instead of a line.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_step  # pylint: disable=wrong-import-position

FLAG_SETS = (
    "--xla_cpu_use_xnnpack=false",
    "--xla_cpu_use_xnnpack=true",
    "--xla_cpu_use_xnnpack=true --xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "--xla_cpu_use_xnnpack=true --xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY_SLINKY",
    "--xla_cpu_use_xnnpack=true --xla_cpu_enable_fast_math=true",
    "--xla_cpu_use_xnnpack=true --xla_cpu_use_onednn=true",
)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=",".join(train_step.CASES))
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args()
  for case in args.cases.split(","):
    for flags in FLAG_SETS:
      run = argparse.Namespace(xla_flags=flags, dtype="float32", warmup=2, steps=args.steps, no_torch_compile=False)
      try:
        print(json.dumps(train_step.run_case(run, "baseline", case)), flush=True)
      except RuntimeError as e:
        print(json.dumps({"case": f"baseline/{case}", "xla_flags": flags, "error": str(e)[-300:]}), flush=True)


if __name__ == "__main__":
  main()
