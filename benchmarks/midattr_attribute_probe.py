"""Do a MidAttr run's mid-level parts carry the attributes? One JSON line: the run's own attribute
heads against a linear probe of the same form (one FC per attribute over the parts Table 1 routes
to it, `midattr.PartAttributeClassifiers`) fitted on the run's frozen parts.

  python benchmarks/midattr_attribute_probe.py --workdir /tmp/repro/midattr/res4_s1

Reads the run's best checkpoint, embeds 2,048 augmented training images (16 batches of 128),
fits the probe with Adam (lr 0.01, 300 full-batch steps, zeros init) on the identities whose label
is not a multiple of 5 and scores it on the other identities, where the run's heads (trained on
every training identity) are scored too.
"""
import argparse
import itertools
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jaxret.training import distributed  # noqa: E402  (before jax initialises its backend)

distributed.cpu_xla_flags()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxret.data import datasets, pipeline  # noqa: E402
from jaxret.methods import midattr  # noqa: E402
from jaxret.methods.a3m import attribute_cross_entropy  # noqa: E402
from jaxret import saved_run  # noqa: E402


def accuracy(logits: np.ndarray, attributes: np.ndarray) -> float:
  """Mean accuracy over the known values: logits `[N, K, V]`, attributes `[N, K]` (-1 unknown)."""
  known = attributes >= 0
  return float(((logits.argmax(-1) == attributes) & known).sum() / known.sum())


def fit_probe(parts: np.ndarray, attributes: np.ndarray, fit: np.ndarray, sizes: tuple[int, ...],
              routing: np.ndarray, steps: int = 300) -> np.ndarray:
  """Fits a `midattr.PartAttributeClassifiers` (one FC per attribute over its routed parts) from
  zeros with Adam 0.01, full batch, on the images where `fit` is True; the logits of every image.
  parts `[N, P, C]`, attributes int `[N, K]` (-1 unknown), fit bool `[N]`, routing bool `[K, P]`
  -> logits `[N, K, max(sizes)]` (values an attribute does not have at -1e9)."""
  probe = midattr.PartAttributeClassifiers(sizes, tuple(map(tuple, np.asarray(routing).tolist())))
  weights = jax.tree.map(jnp.zeros_like, probe.init(jax.random.key(0), parts[:1])["params"])

  def loss(weights):
    return jnp.sum(attribute_cross_entropy(probe.apply({"params": weights}, parts[fit]), attributes[fit]))

  tx = optax.adam(0.01)

  @jax.jit
  def step(weights, opt_state):
    updates, opt_state = tx.update(jax.grad(loss)(weights), opt_state)
    return optax.apply_updates(weights, updates), opt_state

  opt_state = tx.init(weights)
  for _ in range(steps):
    weights, opt_state = step(weights, opt_state)
  return np.asarray(probe.apply({"params": weights}, parts))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a finished MidAttr run with attribute heads")
  args = parser.parse_args()
  run = saved_run.restore(args.workdir, "best")
  data = datasets.load(run.config)
  model = midattr.make_model(run.config)
  forward = jax.jit(lambda x: model.apply({"params": run.params, **run.method_state}, x, train=False))
  batches = pipeline.train_dataset(data.train, train_classes=data.train_classes, global_batch=128, seed=0,
                                   transform=pipeline.train_transform(run.config))
  parts, heads, attributes, labels = [], [], [], []
  for batch in itertools.islice(iter(batches), 16):
    outputs = forward(batch["image"])
    parts.append(np.asarray(outputs["attribute_parts"]))
    heads.append(np.asarray(outputs["attribute_logits"]))
    attributes.append(np.asarray(batch["attributes"]))
    labels.append(np.asarray(batch["label"]))
  parts, heads, attributes, labels = map(np.concatenate, (parts, heads, attributes, labels))
  held_out = labels % 5 == 0

  sizes = tuple(run.config.attribute_sizes)
  routing = tuple(map(tuple, midattr.routing_matrix(run.config.midattr.attribute_parts, parts.shape[1]).tolist()))
  probe = fit_probe(parts, attributes, ~held_out, sizes, routing)
  kernel = run.params["attribute_classifiers"]["kernel"]
  fresh = midattr.PartAttributeClassifiers(sizes, routing).init(jax.random.key(0), parts[:1])
  print(json.dumps({
      "workdir": args.workdir, "attribute_layer": run.config.midattr.attribute_layer, "parts": list(parts.shape[1:]),
      "heads_accuracy": round(accuracy(heads[held_out], attributes[held_out]), 4),
      "probe_train_accuracy": round(accuracy(probe[~held_out], attributes[~held_out]), 4),
      "probe_held_out_accuracy": round(accuracy(probe[held_out], attributes[held_out]), 4),
      "heads_kernel_mean_abs": round(float(np.abs(kernel).mean()), 4),
      "init_kernel_mean_abs": round(float(np.abs(fresh["params"]["kernel"]).mean()), 4),
      "images": [int((~held_out).sum()), int(held_out.sum())]}))


if __name__ == "__main__":
  main()
