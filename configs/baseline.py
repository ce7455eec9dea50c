"""Baseline: backbone + GAP + embedding + classifier trained with cross-entropy.

Quick start (embedded synthetic data, about 5 minutes on a 2-core CPU):
  python -m launch.train --config configs/baseline.py --workdir /tmp/baseline

Arguments after the colon, comma-separated: `dataset=synthetic`. Prints Recall@1/2/4/8 on the
held-out classes (100 unseen synthetic classes) at the end; on this data expect Recall@1 well
above chance (1/100 = 0.01 would be a random embedding's level for the nearest neighbour's class).
"""
import ml_collections

from jaxret.train.config import base_config, parse_arg


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/baseline.py", dataset="synthetic")
  config = base_config()
  config.method = "baseline"
  config.dataset = options["dataset"]

  config.backbone = "resnet18"
  config.backbone_width = 0.25
  config.embedding_dim = 128
  config.image_size = 64
  config.batch_size = 32
  config.total_steps = 600
  config.log_every = 50
  config.eval_every = 300
  config.checkpoint_every = 300
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.05
  config.optimizer.warmup_steps = 50
  config.optimizer.schedule = "cosine"
  config.optimizer.weight_decay = 5e-4
  config.lock()
  return config
