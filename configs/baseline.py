"""Baseline: backbone + GAP + embedding + classifier trained with cross-entropy.

Quick start (embedded synthetic data, about 3 minutes on a 2-core CPU):
  python -m launch.train --config configs/baseline.py --workdir /tmp/baseline

Arguments after the colon, comma-separated: `dataset=NAME` (default synthetic). Prints
Recall@1/2/4/8 on the held-out classes (100 unseen synthetic classes) at the end; on this data
expect Recall@1 0.590 (measured 2026-12-02, seed 0, jaxlib 0.10.2 with jaxret's CPU flags; a random
embedding scores about 0.01). The run is deterministic on one machine and software stack, but a
different XLA convolution path changes its rounding and so the run: 0.656 before
`distributed.cpu_xla_flags` moved convolutions from YNNPACK to XNNPACK.

Real images without a download (Fashion-MNIST from Debian's dataset-fashion-mnist package;
classes 0-4 train, the test images of classes 5-9 are scored):
  python -m launch.prepare_data --dataset fashion_mnist \
      --manual_dir /usr/share/datasets/fashion-mnist --data_dir ~/tfds
  python -m launch.train --config configs/baseline.py:dataset=fashion_mnist \
      --config.data_dir ~/tfds --workdir /tmp/baseline_fmnist
(36 s to prepare, 4 minutes to train on a 2-core CPU; Recall@1 0.835 on the 5,000 test images
of the unseen classes 5-9.)
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
  if config.dataset == "fashion_mnist":  # 28 x 28 images, 5 training classes
    config.image_size = 32
    config.data.val_classes = 1
  elif config.dataset != "synthetic":  # photographs: the papers' 224 crops of 256 resizes
    config.image_size = 224
    config.data.augment = "random_crop"
    config.data.resize_size = 256
  config.lock()
  return config
