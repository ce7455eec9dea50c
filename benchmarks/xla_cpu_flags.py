"""XLA:CPU flags against the baseline training step: one `train_step.py` line per flag set and case.

  python benchmarks/xla_cpu_flags.py                        # both standard cases
  python benchmarks/xla_cpu_flags.py --cases r18_64_b32

Each flag set runs `benchmarks/train_step.py`'s two sides for the baseline (the PyTorch side
again each time, so every ratio pairs measurements taken minutes apart, not an hour). The first
set (None) is XLA's own defaults; the others are added to jaxret's defaults
(`distributed.cpu_xla_flags`, the second set), a flag given here replacing jaxret's.
A flag set this jaxlib rejects prints its error instead of a line.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_step  # pylint: disable=wrong-import-position

YNN = "--xla_cpu_experimental_ynn_fusion_type"
FLAG_SETS = (
    None,
    "",
    "--xla_cpu_use_xnnpack=false",
    f"{YNN}=dot",
    f"{YNN}=reduce",
    f"{YNN}=individual_dot,reduce",
    f"{YNN}=dot,eltwise,reduce",
    "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "--xla_cpu_prefer_vector_width=512",
    "--xla_cpu_enable_fast_math=true",
    "--xla_cpu_use_onednn=true",
)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=",".join(train_step.CASES))
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args()
  for case in args.cases.split(","):
    for flags in FLAG_SETS:
      run = train_step.make_parser().parse_args(
          ["--warmup", "2", "--steps", str(args.steps)]
          + (["--xla_defaults"] if flags is None else ["--xla_flags=" + flags]))
      try:
        print(json.dumps(train_step.run_case(run, "baseline", case)), flush=True)
      except RuntimeError as e:
        print(json.dumps({"case": f"baseline/{case}", "xla_flags": flags, "error": str(e)[-300:]}), flush=True)


if __name__ == "__main__":
  main()
