"""A2-Net's Table 2 on the frozen ImageNet MobileNetV2: every variant at 12 / 24 / 32 / 48 bits with
the outer iterations the paper trains (issue 21).

  python benchmarks/a2net_frozen_backbone.py [--rows a2net_32,...] [--seeds 0,1] [--outer 60]
      [--maps /tmp/a2net_maps.npz] [--out benchmarks/results/reproduce/a2net.jsonl] [--set KEY=VALUE ...]
  python benchmarks/reproduce.py --method a2net --table --out benchmarks/results/reproduce/a2net.jsonl

Why frozen: `benchmarks/reproduce.py` fine-tunes every row for 100 steps, which holds 5 code
updates; ADSH-style training needs tens of them (the paper: T_max = 60 outer iterations), i.e.
thousands of steps, about 5 hours per fine-tuned row on a 2-core CPU. Here the ImageNet
MobileNetV2's last map (`res5`, `[4, 4, 1280]` at `reproduce.FINE_TUNE`'s 128 px, resized, not
flipped) of every synthetic image is computed once; then jaxret's own A2-Net (`a2net.loss_fn`,
`update_state`, `embed_fn`, the row's config from `reproduce.A2NET` with `FROZEN`) trains with
the backbone's call replaced by that map (flax's `intercept_methods`), so only the heads learn.
An outer iteration, as the paper's at a third of the database: Omega = 1,000 random training
images read 3 times (ADSH) in batches of 32, then the Z update; 60 of them, lr / 10 at the 50th.
Every `--eval_every` outer iterations the validation queries (5 held-out training images per
class) are ranked against Z; the iteration with the best validation mAP is scored on the test
queries: mAP against Z and against the re-encoded database (tie-broken by index, and
tie-aware; chance = 1 / 200 classes), and the bit correlation of the test codes, of the
re-encoded database and of Z. One JSON line per (row, seed) in `reproduce.py`'s format, appended
to --out; rows and seeds already there are skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reproduce  # noqa: E402  (sets the CPU XLA flags)

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxret.backbones import get_backbone  # noqa: E402
from jaxret.data import datasets  # noqa: E402
from jaxret.eval import evaluator as evaluator_lib, hashing as hashing_eval  # noqa: E402
from jaxret import mesh as mesh_lib, methods  # noqa: E402
from jaxret.methods import a2net  # noqa: E402
from jaxret.training import loop, optimizer, state as state_lib

OMEGA, EPOCHS_PER_OMEGA, OUTER_ITERATIONS, LR_DROP_AT = 1000, 3, 60, 50  # the paper's schedule (module docstring)
# On the frozen maps: heads only (the backbone's 0.1 x multiplier would match nothing); D = 64 (not
# stated in the paper; 256 made an attention row about an hour here, 64 about 8 minutes).
FROZEN = {"a2net.transform_dim": 64, "data.subset_size": OMEGA, "data.subset_epochs": EPOCHS_PER_OMEGA,
          "optimizer.schedule": "step", "optimizer.decay_factor": 0.1, "optimizer.lr_multipliers": ()}
# The learning rate per code length, chosen on the validation queries of the vanilla rows (seed 0)
# between 0.001 and 0.0005 (benchmarks/results/reproduce/a2net_calibration.jsonl): at 12 bits 0.001
# collapsed the codes to one for every image (bit correlation 0.99); 0.01 collapsed every length
# (a2net_frozen_probe.jsonl). beta = 12 / k weighs the quantisation term's gradient 2.7 x more at
# 12 bits than at 32.
LEARNING_RATE = {12: 0.0005, 24: 0.001, 32: 0.001, 48: 0.001}
SPLITS = ("train", "val", "test")  # train: the database, row j = training image j


def frozen_backbone(next_fun, args, kwargs, context):
  """A flax interceptor: the module named "backbone" returns its input as its `res5` map."""
  if context.module.name == "backbone" and context.method_name == "__call__":
    return {"res5": args[0]}
  return next_fun(*args, **kwargs)


def row_config(row: str, seed: int, outer: int, settings: dict) -> ml_collections.ConfigDict:
  """`reproduce.A2NET`'s config of `row` with `FROZEN`, `outer` outer iterations, then `settings`."""
  settings = {**FROZEN, **settings}
  base = reproduce.row_config(reproduce.A2NET, row, seed, 1, settings)
  steps_per_outer = base.data.subset_epochs * (base.data.subset_size // base.batch_size)
  return reproduce.row_config(reproduce.A2NET, row, seed, outer * steps_per_outer, {
      "optimizer.learning_rate": LEARNING_RATE[base.a2net.bits], "state_update_every": steps_per_outer,
      "optimizer.decay_boundaries": (min(LR_DROP_AT, outer) * steps_per_outer,), **settings})


def backbone_maps(config: ml_collections.ConfigDict, data) -> dict[str, np.ndarray]:
  """The backbone's `res5` `[N, h, w, c]` and the class index `[N]` ("<split>_label") of each of
  `SPLITS`, in the split's order; the ImageNet weights unless `config.init_weights` is "none"."""
  mesh = mesh_lib.make_mesh()
  tx, _ = optimizer.make_optimizer(config)
  sample = {"image": np.zeros((1, config.image_size, config.image_size, 3), np.float32)}
  state = state_lib.create(a2net.METHOD, config, tx, sample, mesh)
  if config.init_weights != "none":
    state = state_lib.with_pretrained_backbone(state, config, a2net.METHOD)
  network = get_backbone(config.backbone, width_multiplier=config.backbone_width)

  def res5(params, method_state, images, _):
    variables = {"params": params["backbone"], "batch_stats": method_state["batch_stats"]["backbone"]}
    maps = network.apply(variables, images, train=False)["res5"]
    return maps.reshape(len(maps), -1)

  embedder = evaluator_lib.Embedder(methods.Method("res5_maps", embed_fn=res5), config, mesh)
  lookup = {c: i for i, c in enumerate(data.train_classes)}
  shape = jax.eval_shape(lambda x: network.init_with_output(jax.random.key(0), x, train=False)[0]["res5"],
                         jax.ShapeDtypeStruct(sample["image"].shape, jnp.float32)).shape[1:]
  out = {}
  for name in SPLITS:
    embedded = embedder(getattr(data, name), state.params, state.method_state, attributes=False)
    out[name] = embedded["embedding"].reshape(-1, *shape)
    out[name + "_label"] = np.asarray([lookup[int(c)] for c in embedded["label"]], np.int32)
  return out


def encode(config: ml_collections.ConfigDict, params, method_state, maps: np.ndarray) -> np.ndarray:
  """`a2net.embed_fn` on backbone maps `[N, h, w, c]` -> the relaxed codes `tanh(W x)` `[N, k]`."""
  with nn.intercept_methods(frozen_backbone):
    embed = jax.jit(lambda x: a2net.embed_fn(params, method_state, x, config))
    return np.concatenate([np.asarray(embed(maps[i:i + 500])) for i in range(0, len(maps), 500)])


def binary(codes) -> np.ndarray:
  """Codes `[N, k]` (relaxed, or Z with 0 for never-assigned rows) -> {-1, +1} (0 -> +1)."""
  return np.where(np.asarray(codes) >= 0, 1, -1).astype(np.int8)


def hashing_scores(config, maps: dict, params, method_state, queries: str, reencoded: bool = True) -> dict:
  """`jaxret.eval.hashing_metrics` of the `queries` split's codes against Z (and, with `reencoded`,
  against the re-encoded database under "reencoded/")."""
  codes = binary(encode(config, params, method_state, maps[queries]))
  z = binary(a2net.database_codes(params, method_state, config))
  scores = hashing_eval.hashing_metrics(codes, maps[queries + "_label"], z, maps["train_label"])
  if reencoded:
    database = binary(encode(config, params, method_state, maps["train"]))
    scores.update({f"{evaluator_lib.REENCODED}/{k}": v for k, v in hashing_eval.hashing_metrics(
        codes, maps[queries + "_label"], database, maps["train_label"]).items()})
  return {k: round(float(v), 4) for k, v in scores.items()}


def bit_correlations(config, maps: dict, params, method_state) -> dict[str, float]:
  """`a2net.mean_abs_bit_correlation` of the test codes, the re-encoded database's and Z's (as
  `reproduce.bit_correlation`)."""
  codes = {"test": encode(config, params, method_state, maps["test"]),
           "database": encode(config, params, method_state, maps["train"]),
           "z": a2net.database_codes(params, method_state, config)}
  return {name: round(float(a2net.mean_abs_bit_correlation(binary(c).astype(np.float32))), 4)
          for name, c in codes.items()}


def initial_model(config: ml_collections.ConfigDict, maps: dict) -> tuple[dict, dict]:
  """`a2net.init_state` without the backbone: the heads' parameters from `config.seed` and the
  database state (random Z by `a2net.database_init`)."""
  model_rng, codes_rng = jax.random.split(jax.random.key(config.seed))
  with nn.intercept_methods(frozen_backbone):
    params = a2net.make_model(config).init(model_rng, maps["train"][:1], train=False)["params"]
  random_codes = config.a2net.database_init == "random"
  return params, {"batch_stats": {}, "database": a2net.init_database(
      config.num_train_examples, config.a2net.bits, codes_rng if random_codes else None)}


def train_and_select(config: ml_collections.ConfigDict, maps: dict, eval_every: int):
  """A2-Net's heads on the frozen maps for `total_steps / state_update_every` outer iterations
  (module docstring) -> (params, method_state, outer iteration, validation metrics) of the
  iteration with the best validation mAP against Z, and {outer iteration: validation mAP}."""
  steps_per_outer = config.state_update_every
  passes = config.data.subset_epochs
  tx, _ = optimizer.make_optimizer(config)
  params, method_state = initial_model(config, maps)
  opt_state = tx.init(params)
  images, labels = jnp.asarray(maps["train"]), jnp.asarray(maps["train_label"])

  @jax.jit
  def step(params, opt_state, method_state, index):
    batch = {"image": images[index], "label": labels[index], "index": index}
    with nn.intercept_methods(frozen_backbone):
      grads, (_, method_state) = jax.grad(a2net.loss_fn, has_aux=True)(params, method_state, batch, None, config)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, method_state

  update_codes = jax.jit(lambda p, s: a2net.update_state(p, s, None, config))
  rng = np.random.default_rng(config.seed)
  batches_per_pass = steps_per_outer // passes
  best, history = None, {}
  for outer in range(1, config.total_steps // steps_per_outer + 1):
    omega = rng.choice(len(images), config.data.subset_size, replace=False)
    for _ in range(passes):
      order = rng.permutation(omega)
      for b in range(batches_per_pass):
        index = jnp.asarray(order[b * config.batch_size:(b + 1) * config.batch_size])
        params, opt_state, method_state = step(params, opt_state, method_state, index)
    method_state = update_codes(params, method_state)
    if outer % eval_every == 0 or outer * steps_per_outer == config.total_steps:
      val = hashing_scores(config, maps, params, method_state, "val", reencoded=False)
      history[outer] = val["map"]
      if best is None or val["map"] > best[3]["map"]:
        best = (params, method_state, outer, val)
  return best, history


def gradient_terms(config: ml_collections.ConfigDict, maps: dict, params, method_state) -> dict[str, float]:
  """The global gradient norm of each weighted term of Eq. 13 (as `a2net_decorrelation.gradient_ratio`:
  the pair term, Eq. 7, Eq. 8, the quantisation term) on one batch of 32 training maps, every
  database label known, at (`params`, `method_state`)."""
  index = jnp.asarray(np.random.default_rng(config.seed).choice(len(maps["train"]), config.batch_size, replace=False))
  batch = {"image": jnp.asarray(maps["train"])[index], "label": jnp.asarray(maps["train_label"])[index], "index": index}
  state = {**method_state, "database": {**method_state["database"], "labels": jnp.asarray(maps["train_label"])}}

  def grad(variant: str, gamma: float):
    variant_config = ml_collections.ConfigDict(config.to_dict())
    variant_config.a2net.variant, variant_config.a2net.gamma = variant, gamma
    with nn.intercept_methods(frozen_backbone):
      return jax.grad(lambda p: a2net.loss_fn(p, state, batch, None, variant_config)[0])(params)

  pair, reconstruction = grad("attention", 0.0), grad("reconstruction", 0.0)
  terms = {"pair": pair, "eq7_reconstruction": jax.tree.map(jnp.subtract, reconstruction, pair),
           "eq8_decorrelation": jax.tree.map(jnp.subtract, grad("a2net", 0.0), reconstruction),
           "quantization": jax.tree.map(jnp.subtract, grad("attention", config.a2net.gamma), pair)}
  return {name: round(float(optax.global_norm(g)), 8) for name, g in terms.items()}


def config_value(config: ml_collections.ConfigDict, key: str):
  """The value of the dotted `key` ("optimizer.learning_rate") in `config`."""
  for name in key.split("."):
    config = config[name]
  return config


def run_row(row: str, seed: int, outer: int, eval_every: int, maps: dict, data, settings: dict,
            with_gradients: bool = False) -> dict:
  """Trains `row` at `seed` on the frozen `maps` -> its JSON line (`reproduce.run_row`'s fields);
  `with_gradients` adds `gradient_terms` at initialisation and at the chosen model (rows with
  the attention features, whose variants share their parameters)."""
  config = loop.with_dataset_info(row_config(row, seed, outer, settings), data)
  start = time.perf_counter()
  (params, method_state, chosen, val), history = train_and_select(config, maps, eval_every)
  line = {"method": "a2net", "row": row, "seed": seed, "backbone": "frozen",
          "bits": bit_correlations(config, maps, params, method_state),
          "hashing": hashing_scores(config, maps, params, method_state, "test"),
          "checkpoint_outer_iteration": chosen, "val": val, "val_map_by_outer_iteration": history,
          "outer_iterations": outer,
          "steps": config.total_steps, "seconds": round(time.perf_counter() - start, 1),
          "config": reproduce.A2NET.rows[row][0],
          "settings": {key: str(config_value(config, key)) for key in {
              **reproduce.A2NET.rows[row][1], **FROZEN, **settings, "optimizer.learning_rate": None,
              "state_update_every": None, "optimizer.decay_boundaries": None}},
          "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}"}
  if with_gradients and config.a2net.variant != "vanilla":
    line["gradient_norms"] = {"chosen": gradient_terms(config, maps, params, method_state),
                              "init": gradient_terms(config, maps, *initial_model(config, maps))}
  return line


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default="", help="comma-separated rows of reproduce.A2NET (default: all)")
  parser.add_argument("--seeds", default="0,1")
  parser.add_argument("--outer", type=int, default=OUTER_ITERATIONS, help="outer iterations (Z updates)")
  parser.add_argument("--eval_every", type=int, default=10, help="outer iterations between validations")
  parser.add_argument("--set", action="append", default=[], type=reproduce.parse_setting,
                      help="KEY=VALUE for every row (reproduce.py's --set)")
  parser.add_argument("--out", default=os.path.join(reproduce.REPO, "benchmarks", "results", "reproduce", "a2net.jsonl"))
  parser.add_argument("--maps", default="", help="an .npz file keeping the backbone maps between runs")
  parser.add_argument("--gradients", action="store_true", help="add each loss term's gradient norm to the lines")
  args = parser.parse_args(argv)
  settings = dict(args.set)
  rows = args.rows.split(",") if args.rows else list(reproduce.A2NET.rows)
  unknown = [row for row in rows if row not in reproduce.A2NET.rows]
  if unknown:
    parser.error(f"--rows: {unknown} are not rows of A2-Net; expected some of {list(reproduce.A2NET.rows)}")
  first = reproduce.row_config(reproduce.A2NET, rows[0], 0, 1, settings)
  data = datasets.load(first)
  if args.maps and os.path.exists(args.maps):
    maps = dict(np.load(args.maps))
  else:
    maps = backbone_maps(loop.with_dataset_info(first, data), data)
    if args.maps:
      np.savez(args.maps, **maps)
  done = {(line["row"], line["seed"]) for line in reproduce.read_lines(args.out)}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  for seed in map(int, args.seeds.split(",")):
    for row in rows:
      if (row, seed) in done:
        continue
      line = run_row(row, seed, args.outer, args.eval_every, maps, data, settings, args.gradients)
      with open(args.out, "a") as f:
        f.write(json.dumps(line) + "\n")
      print(json.dumps(line), flush=True)
  print(f"{reproduce.A2NET.paper}\n\n{reproduce.markdown(reproduce.A2NET, reproduce.read_lines(args.out))}")


if __name__ == "__main__":
  main()
