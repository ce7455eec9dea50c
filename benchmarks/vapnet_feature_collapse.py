"""Do VAPNet's fine-tuned features collapse? The test embeddings of a reproduce.py run's checkpoints.

  python benchmarks/vapnet_feature_collapse.py /tmp/repro/vapnet/aux_only_s0 /tmp/repro/vapnet/full_s0

For each workdir and each of its models (the best validation model and the latest checkpoint):
its step, the mean L2 norm of the test split's embeddings E_R = GAP(F) `[N, D]` before the
evaluation's normalisation, their spread (the mean over dimensions of the standard deviation
across images, divided by the mean norm: near 0 when every image has the same feature), and the
test Recall@1 / mAP@R. One JSON line per model.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxret.training import distributed  # noqa: E402  (before jax initialises its backend)

distributed.cpu_xla_flags()

import numpy as np  # noqa: E402

from jaxret.data import datasets  # noqa: E402
from jaxret.eval import evaluator as evaluator_lib  # noqa: E402
from jaxret import saved_run  # noqa: E402


def feature_statistics(workdir: str, which: str) -> dict:
  run = saved_run.restore(workdir, which)
  data = datasets.load(run.config)
  embedder = evaluator_lib.Embedder(run.method, run.config, run.mesh)
  embedding = embedder(data.test, run.params, run.method_state, attributes=False)["embedding"]
  norm = float(np.linalg.norm(embedding, axis=1).mean())
  metrics = evaluator_lib.make_evaluator(data.test, data.test_gallery, embedder).run(run.params, run.method_state)
  return {"workdir": workdir, "model": which, "step": int(run.step), "mean_norm": round(norm, 4),
          "spread": round(float(embedding.std(axis=0).mean()) / norm, 4),
          "recall@1": round(float(metrics["recall@1"]), 4), "map@r": round(float(metrics["map@r"]), 4)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+")
  for workdir in parser.parse_args().workdirs:
    for which in ("best", "latest"):
      print(json.dumps(feature_statistics(workdir, which)), flush=True)


if __name__ == "__main__":
  main()
