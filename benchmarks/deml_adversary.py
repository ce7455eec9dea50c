"""DeML Table 4 on the synthetic creatures: how similar the J channel-attention learners are with
and without a diversity term, and what that does to Recall@K on the held-out classes.

  python benchmarks/deml_adversary.py --adversaries none,grl,hinge --J 4 --steps 160

For each adversary (none = Table 4's "without L_adv"; grl = Eq. 4 through gradient reversal;
hinge = the public code's contrastive hinge) it trains `configs/deml.py:dataset=synthetic,I=1,J=..`
for `--steps` steps with `jaxret.training.loop.train`, then embeds the test split (100 unseen
classes) with the model the loop chose on validation and reports:
- "sim": Table 4's mean cosine similarity between CA learners: cos(CA_j(x), CA_j'(x)) averaged
  over the test images, per pair j < j'; mean and standard deviation over the pairs;
- "metric_agreement": the mean over pairs of the correlation between two learners' cosine
  similarity matrices on the first 1,000 test images (1: both learners rank every pair of
  images alike, the redundancy the adversary is meant to remove; invariant to rotations of a
  learner's output space, which "sim" is not);
- the test Recall@K and the wall time (training + evaluation).
Prints one JSON line.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import deml as deml_config  # noqa: E402
from jaxret.data import datasets, pipeline  # noqa: E402
from jaxret import protocols  # noqa: E402
from jaxret.methods import deml  # noqa: E402
from jaxret.training import checkpoint, distributed, loop  # noqa: E402

AGREEMENT_IMAGES = 1000


def test_learners(config, workdir: str) -> np.ndarray:
  """CA outputs `[N, I, J, d]` of the test split under the model chosen on validation."""
  data = datasets.load(config)
  batch = {"image": np.zeros((1, config.image_size, config.image_size, 3), np.float32)}
  params, method_state = jax.jit(lambda: deml.init_state(jax.random.key(0, impl="rbg"), config, batch))()
  manager = checkpoint.make_best_manager(workdir, protocols.selection_metric(config))
  _, model = checkpoint.restore_best(manager, types.SimpleNamespace(params=params, method_state=method_state))
  manager.close()
  net = deml.make_model(config)
  apply = jax.jit(lambda images: net.apply({"params": model["params"], **model["method_state"]}, images,
                                           train=False)["learners"])
  dataset = pipeline.eval_dataset(data.test, global_batch=config.eval.batch_size,
                                  transform=pipeline.eval_transform(config))
  out = []
  for i in range(len(dataset)):
    rows = dataset[i]
    out.append(np.asarray(apply(jnp.asarray(rows["image"])))[np.asarray(rows["valid"])])
  return np.concatenate(out)


def learner_statistics(learners: np.ndarray) -> dict:
  """Table 4's "sim" and the metric agreement from `[N, I, J, d]` learner outputs."""
  unit = learners / np.linalg.norm(learners, axis=-1, keepdims=True)
  j = unit.shape[2]
  pairs = [(a, b) for a in range(j) for b in range(a + 1, j)]
  sims = [float(np.mean(np.sum(unit[:, :, a] * unit[:, :, b], axis=-1))) for a, b in pairs]
  subset = unit[:AGREEMENT_IMAGES]
  upper = np.triu_indices(len(subset), k=1)
  agreements = []
  for i in range(unit.shape[1]):
    matrices = [(subset[:, i, a] @ subset[:, i, a].T)[upper] for a in range(j)]
    agreements += [float(np.corrcoef(matrices[a], matrices[b])[0, 1]) for a, b in pairs]
  return {"sim": float(np.mean(sims)), "sim_std": float(np.std(sims)),
          "metric_agreement": float(np.mean(agreements))}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--adversaries", default="none,grl,hinge")
  parser.add_argument("--I", type=int, default=1)
  parser.add_argument("--J", type=int, default=4)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--images_per_class", type=int, default=60, help="synthetic images per class (smoke runs: 4)")
  parser.add_argument("--workdir", default="")
  args = parser.parse_args()
  distributed.cpu_xla_flags()
  results = {"benchmark": "deml_adversary", "I": args.I, "J": args.J, "steps": args.steps, "seed": args.seed}
  root = args.workdir or tempfile.mkdtemp(prefix="deml_adversary_")
  for adversary in args.adversaries.split(","):
    config = deml_config.get_config(f"dataset=synthetic,I={args.I},J={args.J},adversary={adversary}")
    config.total_steps = args.steps
    config.seed = args.seed
    config.data.synthetic_images_per_class = args.images_per_class
    config.eval_every = 0  # validation and test once, at the end
    config.checkpoint_every = args.steps
    config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, args.steps // 4)
    workdir = os.path.join(root, adversary)
    start = time.perf_counter()
    metrics = loop.train(config, workdir)
    seconds = time.perf_counter() - start
    stats = learner_statistics(test_learners(config, workdir))
    results[adversary] = {**{k: round(v, 4) for k, v in metrics.items() if k.startswith("recall@")},
                          **{k: round(v, 4) for k, v in stats.items()}, "train_and_eval_seconds": round(seconds)}
  print(json.dumps(results))


if __name__ == "__main__":
  main()
