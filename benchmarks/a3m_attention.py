"""How saturated A3M's attentions are at initialisation, per `a3m.attention_norm` (and `a3m.branch`).

  python benchmarks/a3m_attention.py [--config configs/a3m.py] [--images 32] [--seed 0]

Initialises the config's model (default: configs/a3m.py, synthetic: ResNet-18 at width 0.25, 64 px,
d = 128), runs it in train mode (batch statistics) on `--images` training images, and prints one
JSON line per setting: the standard deviation of the region scores `V^T a_k` and the fraction with
|s| > 5, the region attention `m_region` (mean, min, fraction > 0.99) and the category-guided gates
`s_attr` (fraction < 0.01 or > 0.99, std). Raw scores of Eqs. 5 / 7 grow with sqrt(d).
"""
import argparse
import importlib.util
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
from jaxret.data import datasets, pipeline
from jaxret.methods import a3m
from jaxret.training import loop

SETTINGS = ({"attention_norm": "none"}, {"attention_norm": "scale"}, {"attention_norm": "batchnorm"},
            {"attention_norm": "batchnorm", "branch": "batchnorm_relu"})


def load_config(path: str):
  spec = importlib.util.spec_from_file_location("a3m_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def measure(config_path: str, settings: dict, num_images: int, seed: int) -> dict:
  config = load_config(config_path)
  config.a3m.update(settings)
  data = datasets.load(config)
  config = loop.with_dataset_info(config, data)
  indices = np.random.default_rng(seed).permutation(len(data.train))[:num_images]
  images = np.stack([pipeline.normalize(data.train[int(i)]["image"]) for i in indices])
  params, state = jax.jit(lambda: a3m.init_state(jax.random.key(seed), config, {"image": images}))()

  @jax.jit
  def forward(params, state, images):
    out, variables = a3m.make_model(config).apply({"params": params, **state}, images, train=True,
                                                  mutable=["batch_stats", "intermediates"])
    v, a = variables["intermediates"]["V"][0], variables["intermediates"]["A"][0]
    return out, a3m.region_scores(v, a)

  out, scores = jax.tree.map(np.asarray, forward(params, state, images))
  region, gates = out["region_attention"], out["attribute_weights"]
  return {"config": config_path, **settings, "feature_dim": config.a3m.feature_dim, "images": num_images,
          "seed": seed, "score_std": float(scores.std()), "score_abs_gt_5": float(np.mean(np.abs(scores) > 5)),
          "region_mean": float(region.mean()), "region_min": float(region.min()),
          "region_gt_0.99": float(np.mean(region > 0.99)),
          "gates_saturated": float(np.mean((gates < 0.01) | (gates > 0.99))), "gate_std": float(gates.std()),
          "device": jax.devices()[0].device_kind}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="configs/a3m.py")
  parser.add_argument("--images", type=int, default=32)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  for settings in SETTINGS:
    print(json.dumps(measure(args.config, settings, args.images, args.seed)), flush=True)


if __name__ == "__main__":
  main()
