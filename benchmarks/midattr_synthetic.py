"""Mid-level attributes + part branch on the synthetic creatures: re-ID metrics of the test
identities for the global, part and fused descriptors of one trained model (the paper's Table 2
rows), one JSON line.

  python benchmarks/midattr_synthetic.py --workdir /tmp/midattr                 # configs/midattr.py
  python benchmarks/midattr_synthetic.py --arg attributes=none --workdir /tmp/midattr_none

Trains `configs/midattr.py:<arg>` with `jaxret.training.loop.train` (a finished run in `--workdir`
is not retrained: the loop only scores it), then scores the checkpoint chosen on validation
(mAP of the validation identities) with each descriptor. Needs `branches=both`.
"""
import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jaxret.training import distributed  # noqa: E402  (before jax initialises its backend)

distributed.cpu_xla_flags()

import jax  # noqa: E402

from configs import midattr as midattr_config  # noqa: E402
from jaxret import methods, protocols  # noqa: E402
from jaxret.data import datasets, pipeline  # noqa: E402
from jaxret.eval import evaluator as evaluator_lib  # noqa: E402
from jaxret import mesh as mesh_lib  # noqa: E402
from jaxret.training import checkpoint, loop, optimizer, state as state_lib

KEYS = ("rank1", "rank5", "map", "minp")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--arg", default="", help="configs/midattr.py argument, e.g. attributes=none")
  parser.add_argument("--workdir", required=True)
  args = parser.parse_args()
  config = midattr_config.get_config(args.arg)
  start = time.perf_counter()
  fused = loop.train(config, args.workdir)
  seconds = time.perf_counter() - start

  method = methods.get_method(config.method)
  mesh = mesh_lib.make_mesh()
  data = datasets.load(config)
  config = loop.with_dataset_info(config, data)
  sample = next(iter(pipeline.train_dataset(data.train, train_classes=data.train_classes,
                                            global_batch=config.batch_size, seed=0,
                                            transform=pipeline.train_transform(config))))
  tx, _ = optimizer.make_optimizer(config)
  state = state_lib.create(method, config, tx, sample, mesh)
  best = checkpoint.make_best_manager(args.workdir, protocols.selection_metric(config))
  step, model = checkpoint.restore_best(best, state)
  best.close()
  result = {"config": f"configs/midattr.py:{args.arg}", "train_and_test_seconds": round(seconds, 1),
            "checkpoint_step": step, "jax": jax.__version__, "devices": jax.device_count()}
  for descriptor in ("global", "part", "fused"):
    variant = config.copy_and_resolve_references()
    variant.unlock()
    variant.midattr.descriptor = descriptor
    variant.lock()
    metrics = fused if descriptor == "fused" else evaluator_lib.make_evaluator(
        data.test, data.test_gallery, evaluator_lib.Embedder(method, variant, mesh)).run(
            model["params"], model["method_state"])
    result[descriptor] = {k: round(float(metrics[k]), 4) for k in KEYS}
  if "attribute_accuracy" in fused:
    result["attribute_accuracy"] = round(float(fused["attribute_accuracy"]), 4)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
