"""VAPNet against the baseline at the same batch size: training images/second and embedding time.

  python benchmarks/vapnet_throughput.py                 # ResNet-18 x0.25, 64 px, batch 16, M = 2 and 4
  python benchmarks/vapnet_throughput.py --views 4 --image_size 224 --backbone resnet50 --width 1

Both methods get the same backbone, input size, batch and an FC embedding of the same size (so
their retrieval modules are the same network), random images and labels, one device. Each
compiled train step (and embedding function) is warmed up, then the methods are timed in
alternation, `--steps` steps per turn for `--rounds` rounds, so a shared, noisy CPU slows
both alike; the ratios are medians over rounds. A VAPNet training step runs B (1 + M) images
through the backbone (plus crop-and-resize, RoIAlign and the encoders), the baseline's B.
Prints one JSON line.
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jaxret.training import distributed  # pylint: disable=wrong-import-position

distributed.cpu_xla_flags()

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from configs import baseline as baseline_config  # pylint: disable=wrong-import-position
from configs import vapnet as vapnet_config  # pylint: disable=wrong-import-position
from jaxret import methods  # pylint: disable=wrong-import-position
from jaxret import mesh as mesh_lib  # pylint: disable=wrong-import-position
from jaxret.training import optimizer
from jaxret.training import state as state_lib, step as step_lib  # pylint: disable=wrong-import-position


def make_config(method: str, args, views: int):
  config = vapnet_config.get_config() if method == "vapnet" else baseline_config.get_config()
  config.unlock()
  config.backbone, config.backbone_width, config.image_size = args.backbone, args.width, args.image_size
  config.batch_size, config.eval.batch_size = args.batch, args.batch
  config.embedding_dim, config.num_classes = 128, 100
  config.optimizer.warmup_steps = 0
  if method == "vapnet":
    config.vapnet.num_views = views
  config.lock()
  return config


def timed(fn, n: int) -> float:
  """Seconds for n calls of fn, each result waited for."""
  start = time.perf_counter()
  for _ in range(n):
    jax.block_until_ready(fn())
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--views", type=int, nargs="+", default=[2, 4])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--image_size", type=int, default=64)
  parser.add_argument("--backbone", default="resnet18")
  parser.add_argument("--width", type=float, default=0.25)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()

  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  rng = np.random.default_rng(0)
  batch = {"image": rng.normal(size=(args.batch, args.image_size, args.image_size, 3)).astype(np.float32),
           "label": rng.integers(0, 100, size=args.batch).astype(np.int32)}
  runs = {"baseline": make_config("baseline", args, 0)}
  runs.update({f"vapnet_m{m}": make_config("vapnet", args, m) for m in args.views})
  train, embed = {}, {}
  for name, config in runs.items():
    method = methods.get_method(config.method)
    tx, schedule = optimizer.make_optimizer(config)
    state = state_lib.create(method, config, tx, batch, mesh)
    step = step_lib.compile_train_step(method, config, tx, schedule, mesh)
    global_batch = mesh_lib.global_batch(batch, mesh)
    embed_fn = jax.jit(lambda p, s, x, m=method, c=config: m.embed_fn(p, s, x, c))
    holder = {"state": state}

    def train_once(holder=holder, step=step, global_batch=global_batch):
      holder["state"], metrics = step(holder["state"], global_batch)
      return metrics["loss"]

    train[name] = train_once
    embed[name] = lambda f=embed_fn, h=holder, x=global_batch["image"]: f(h["state"].params, h["state"].method_state, x)
    timed(train_once, 2)  # compile and warm up
    timed(embed[name], 2)

  train_s = {name: [] for name in runs}
  embed_s = {name: [] for name in runs}
  for _ in range(args.rounds):
    for name in runs:  # alternating turns
      train_s[name].append(timed(train[name], args.steps) / args.steps)
      embed_s[name].append(timed(embed[name], args.steps) / args.steps)
  result = {"benchmark": "vapnet_throughput", "backbone": args.backbone, "width": args.width,
            "image_size": args.image_size, "batch": args.batch, "steps_per_turn": args.steps, "rounds": args.rounds,
            "device": str(jax.devices()[0]), "jax_version": jax.__version__, "methods": {}}
  for name in runs:
    ratios_train = [b / v for b, v in zip(train_s["baseline"], train_s[name])]
    ratios_embed = [v / b for b, v in zip(embed_s["baseline"], embed_s[name])]
    result["methods"][name] = {
        "train_images_per_s": args.batch / statistics.median(train_s[name]),
        "train_throughput_vs_baseline": statistics.median(ratios_train),
        "embed_ms_per_batch": 1e3 * statistics.median(embed_s[name]),
        "embed_time_vs_baseline": statistics.median(ratios_embed)}
  print(json.dumps(result))


if __name__ == "__main__":
  main()
