"""Re-ID metrics of one trained run with and without k-reciprocal re-ranking and query expansion.

  python benchmarks/reid_rerank.py --workdir /tmp/reid_rerank [--record]

Trains (or resumes) the baseline on the synthetic creatures under the re-ID protocol (test
identities never trained on; each identity's first image per camera is a query, the rest the
gallery), then scores its test split four ways with `jaxret.evaluate`: plain, average query
expansion (k = 10, alpha = 3), re-ranking (k1 = 20, k2 = 6, lambda = 0.3), both. One JSON line per
way (appended to benchmarks/results/reid_rerank.jsonl with --record).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/
WAYS = {"plain": {}, "query_expansion": {"query_expansion": True}, "rerank": {"rerank": True},
        "query_expansion+rerank": {"query_expansion": True, "rerank": True}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--metric", default="euclidean", choices=("euclidean", "cosine"))
  parser.add_argument("--record", action="store_true")
  args = parser.parse_args()
  from jaxret.training import distributed  # pylint: disable=import-outside-toplevel
  distributed.cpu_xla_flags()
  import jaxret  # pylint: disable=import-outside-toplevel
  from configs import baseline  # pylint: disable=import-outside-toplevel

  config = baseline.get_config("dataset=synthetic")
  config.total_steps = args.steps
  config.eval.protocol, config.eval.metric = "reid", args.metric
  config.eval.fprs = (1e-4, 1e-3, 1e-2)
  jaxret.train(config, args.workdir)
  run = jaxret.restore(args.workdir, "best")
  for way, settings in WAYS.items():
    start = time.perf_counter()
    metrics = jaxret.evaluate(run, "test", **settings)
    line = {"case": f"synthetic re-ID, baseline {args.steps} steps, {args.metric}", "way": way,
            "eval_seconds": round(time.perf_counter() - start, 1), "checkpoint_step": run.step,
            **{k: v for k, v in metrics.items() if k != "skipped_queries"}}
    print(json.dumps(line))
    if args.record:
      with open(os.path.join(REPO, "benchmarks", "results", "reid_rerank.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
  main()
