"""Draws a run's training curves (loss, learning rate, evaluation metrics per split) as a PNG.

  python -m launch.plot_curves --workdir RUN --out curves.png

Reads RUN/metrics.jsonl (written by launch.train, also while it runs); see jaxret.viz.training_curves.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jaxret.viz import training_curves


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m launch.plot_curves", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="the run's --workdir (or its metrics.jsonl)")
  parser.add_argument("--out", required=True, help="PNG to write")
  args = parser.parse_args(argv)
  try:
    names = training_curves.plot_training_curves(args.workdir, args.out)
  except ValueError as e:
    raise SystemExit(f"error: {e}") from e
  print(f"wrote {args.out}: {', '.join(names)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
