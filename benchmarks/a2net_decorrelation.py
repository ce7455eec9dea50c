"""A2-Net on the synthetic set: does the decorrelation term (Eq. 8) lower the correlation between bits?

  python benchmarks/a2net_decorrelation.py --workdir_root /tmp/a2net_bench      # bits 32, seed 0
  python benchmarks/a2net_decorrelation.py --variants a2net --alpha_times_nk 36000 --total_steps 200
  python benchmarks/a2net_decorrelation.py --similarity paper     # the paper's S = -1 (default: balanced)
  python benchmarks/a2net_decorrelation.py --gradient_ratio --bits 32     # Eq. 7 / 8 vs pair term at init

Trains `configs/a2net.py:dataset=synthetic,bits=K,variant=V` for each variant (default
"reconstruction", i.e. A2-Net without Eq. 8, and "a2net") with the loop (a finished run in
`<workdir_root>/<variant>_bits<K>_seed<S>[_alpha<A>]` is reused), then embeds the test queries
and the database with the model the loop scored (best validation mAP) and prints one JSON line:
per variant, the test Hamming mAP against the learned database codes Z ("map", "map_tie_aware":
the hashing protocol) and against the re-encoded database ("reencoded/..."), and the mean
|Pearson correlation| over the K (K - 1) / 2 pairs of bits of the binary codes of the test
queries, of the re-encoded database and of Z.

`--gradient_ratio`: no training; at initialisation, on one training batch against a database
whose labels are all known (as after the first pass) and Z random, the global norm of the
gradient (over all parameters) of each term of the loss as the loss weighs it, and its ratio to
the pair (asymmetric) term's. One JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxret.training import distributed  # noqa: E402

distributed.cpu_xla_flags()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import optax  # noqa: E402

from configs import a2net as a2net_config  # noqa: E402
from jaxret import methods, protocols  # noqa: E402
from jaxret.data import datasets, pipeline  # noqa: E402
from jaxret.eval import evaluator as evaluator_lib  # noqa: E402
from jaxret.methods import a2net  # noqa: E402
from jaxret import mesh as mesh_lib  # noqa: E402
from jaxret.training import checkpoint, loop, optimizer, state as state_lib


def scored_model(config, workdir: str):
  """(params, method_state) of the model the loop scored in `workdir`, and the data splits."""
  mesh = mesh_lib.make_mesh()
  data = datasets.load(config)
  config = loop.with_dataset_info(config, data)
  train_data = pipeline.train_dataset(data.train, train_classes=data.train_classes, global_batch=config.batch_size,
                                      seed=config.seed, transform=pipeline.train_transform(config),
                                      subset_size=config.data.subset_size, subset_epochs=config.data.subset_epochs)
  tx, _ = optimizer.make_optimizer(config)
  state = state_lib.create(a2net.METHOD, config, tx, next(iter(train_data)), mesh)
  best = checkpoint.make_best_manager(workdir, protocols.selection_metric(config))
  chosen = checkpoint.restore_best(best, state)
  best.close()
  if chosen is None:
    manager = checkpoint.make_manager(workdir, config.keep_checkpoints)
    state = checkpoint.restore_latest(manager, state, iter(train_data))
    manager.close()
    model = {"params": state.params, "method_state": state.method_state}
  else:
    model = chosen[1]
  return config, mesh, data, model


def bit_correlations(embed: evaluator_lib.Embedder, params, method_state, queries, database) -> dict[str, float]:
  """`a2net.mean_abs_bit_correlation` of the binary codes of the `queries` ("test") and of the
  re-encoded `database` (the training split, "database"), and of the learned codes Z ("z")."""
  codes = {name: embed(source, params, method_state, attributes=False)["embedding"]
           for name, source in (("test", queries), ("database", database))}
  codes["z"] = a2net.database_codes(params, method_state, embed.config)
  return {name: float(a2net.mean_abs_bit_correlation(jnp.where(jnp.asarray(c) >= 0, 1.0, -1.0)))
          for name, c in codes.items()}


def gradient_ratio(bits: int, seed: int) -> dict:
  """Gradient norms of each weighted term of the loss at init (module docstring)."""
  base = a2net_config.get_config(f"dataset=synthetic,bits={bits}")
  data = datasets.load(base)
  base = loop.with_dataset_info(base, data)
  batch = next(iter(pipeline.train_dataset(data.train, train_classes=data.train_classes, global_batch=base.batch_size,
                                           seed=seed, transform=pipeline.train_transform(base),
                                           subset_size=base.data.subset_size, subset_epochs=base.data.subset_epochs)))
  batch = {k: jnp.asarray(batch[k]) for k in ("image", "label", "index")}
  params, state = a2net.init_state(jax.random.key(seed), base, batch)
  lookup = {c: i for i, c in enumerate(data.train_classes)}
  labels = jnp.asarray([lookup[int(c)] for c in pipeline.labels_of(data.train)], jnp.int32)
  state["database"] = {**state["database"], "labels": labels}

  def grad(variant, gamma):
    config = ml_collections.ConfigDict(base.to_dict())
    config.a2net.variant, config.a2net.gamma = variant, gamma
    return jax.grad(lambda p: a2net.loss_fn(p, state, batch, None, config)[0])(params)

  pair = grad("attention", 0.0)  # the three variants share every parameter
  terms = {"pair": pair,
           "eq7_reconstruction": jax.tree.map(jnp.subtract, grad("reconstruction", 0.0), pair),
           "eq8_decorrelation": jax.tree.map(jnp.subtract, grad("a2net", 0.0), grad("reconstruction", 0.0)),
           "quantization": jax.tree.map(jnp.subtract, grad("attention", base.a2net.gamma), pair)}
  norms = {name: float(optax.global_norm(g)) for name, g in terms.items()}
  return {"bits": bits, "seed": seed, "batch": base.batch_size, "database": int(len(data.train)),
          "gamma": base.a2net.gamma, "gradient_norm": norms,
          "ratio_to_pair": {name: norms[name] / norms["pair"] for name in norms if name != "pair"}}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir_root", default="/tmp/a2net_bench")
  parser.add_argument("--variants", default="reconstruction,a2net")
  parser.add_argument("--bits", type=int, default=32)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--alpha_times_nk", type=float, default=1.0)
  parser.add_argument("--total_steps", type=int, default=0, help="0: the config's (600)")
  parser.add_argument("--similarity", default="balanced", help="config.a2net.similarity: balanced | paper")
  parser.add_argument("--subset_epochs", type=int, default=0,
                      help="passes over each Omega (0: the config's 3); Omega shrinks to keep the steps")
  parser.add_argument("--gradient_ratio", action="store_true", help="only the gradient norms at init")
  args = parser.parse_args()
  if args.gradient_ratio:
    print(json.dumps(gradient_ratio(args.bits, args.seed)))
    return
  results = {"bits": args.bits, "seed": args.seed, "alpha_times_nk": args.alpha_times_nk,
             "total_steps": args.total_steps or 600, "similarity": args.similarity}
  if args.subset_epochs:
    results["subset_epochs"] = args.subset_epochs
  for variant in args.variants.split(","):
    config = a2net_config.get_config(f"dataset=synthetic,bits={args.bits},variant={variant}")
    config.unlock()
    config.seed = args.seed
    config.a2net.alpha_times_nk = args.alpha_times_nk
    config.total_steps = args.total_steps or config.total_steps
    config.a2net.similarity = args.similarity
    if args.subset_epochs:  # same images per outer iteration and steps: a smaller Omega
      config.data.subset_size = config.data.subset_size * config.data.subset_epochs // args.subset_epochs
      config.data.subset_epochs = args.subset_epochs
    config.lock()
    suffix = "" if args.alpha_times_nk == 1.0 else f"_alpha{args.alpha_times_nk:g}"
    suffix += "" if args.similarity == "paper" else f"_{args.similarity}"
    suffix += f"_epochs{args.subset_epochs}" if args.subset_epochs else ""
    steps = f"_steps{args.total_steps}" if args.total_steps else ""
    workdir = os.path.join(args.workdir_root, f"{variant}_bits{args.bits}_seed{args.seed}{suffix}{steps}")
    metrics = loop.train(config, workdir)
    config, mesh, data, model = scored_model(config, workdir)
    embed = evaluator_lib.Embedder(methods.get_method("a2net"), config, mesh)
    row = {k: metrics[k] for k in ("map", "map_tie_aware", "reencoded/map", "reencoded/map_tie_aware",
                                    "checkpoint_step")}
    correlations = bit_correlations(embed, model["params"], model["method_state"], data.test, data.train)
    row.update({f"bit_correlation_{name}": value for name, value in correlations.items()})
    results[variant] = row
  print(json.dumps(results))


if __name__ == "__main__":
  main()
