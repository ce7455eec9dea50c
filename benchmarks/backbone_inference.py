"""Eval-mode embedding throughput of a backbone: GAP of its last stage, jitted, one batch repeated.

  python benchmarks/backbone_inference.py [--backbone mobilenet_v2] [--sizes 64,128] [--batch 128]

What frozen-feature extraction, `launch.embed` and evaluation cost per image (the data pipeline
left out). jaxret's CPU XLA flags are set as `launch.train` sets them. Warm-up call, then the
median of `--repeats` timed calls; prints one JSON line per image size.
"""
import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
from jaxret.backbones import get_backbone
from jaxret.training import distributed


def measure(backbone: str, size: int, batch: int, repeats: int) -> dict:
  model = get_backbone(backbone, width_multiplier=1.0)
  images = jnp.asarray(np.random.default_rng(0).normal(size=(batch, size, size, 3)), jnp.float32)
  variables = jax.jit(lambda: model.init(jax.random.key(0), images[:1], train=False))()
  embed = jax.jit(lambda v, x: jnp.mean(model.apply(v, x, train=False)["res5"], axis=(1, 2)))
  jax.block_until_ready(embed(variables, images))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(embed(variables, images))
    times.append(time.perf_counter() - start)
  return {"backbone": backbone, "image_size": size, "batch": batch, "img_s": round(batch / statistics.median(times), 1),
          "device": jax.devices()[0].device_kind, "version": f"jax {jax.__version__}"}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--backbone", default="mobilenet_v2")
  parser.add_argument("--sizes", default="64,128")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  distributed.cpu_xla_flags()
  for size in map(int, args.sizes.split(",")):
    print(json.dumps(measure(args.backbone, size, args.batch, args.repeats)), flush=True)


if __name__ == "__main__":
  main()
