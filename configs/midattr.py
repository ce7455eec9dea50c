"""Mid-level attributes + part branch for person re-ID (jaxret/methods/midattr.py, papers/midattr.txt).

Arguments after the colon, comma-separated: `dataset=synthetic | market1501 | dukemtmc_reid`
(default synthetic), `attributes=res3 | res4 | res5 | none` (the layer of the attribute heads),
`branches=both | global | part` (the identity branches trained), `descriptor=fused | global |
part` (the test descriptor; default fused with both branches, else the one branch trained).
Every run is scored with the re-ID protocol (CMC rank-1/5/10/20, mAP, mINP; Euclidean distance).
The paper's datasets start from ImageNet weights (`config.init_weights=imagenet`:
`~/.cache/jaxret/weights/resnet50.npz`, made once by `launch.convert_weights`, README); add `--config.data_dir ~/tfds`.

dataset=synthetic (default): the embedded creatures as re-ID data (identity = class, 6 cameras;
100 training identities, 10 of them for validation, 100 test identities split into query and
gallery by camera), their 12 part attributes routed by `SYNTHETIC_PARTS`, a ResNet-18 at width
0.25 on 64 px, 600 steps:
  python -m launch.train --config configs/midattr.py --workdir /tmp/midattr
At 64 px the last stage is 2 x 2, so the part branch has 2 stripes; res3 is 8 x 8 (4 parts of 2 rows).
Measured (seed 0, 600 steps, 5 CPU-minutes; `benchmarks/midattr_synthetic.py`, BENCHMARKS.md), test
rank-1 / mAP / mINP of the fused descriptor: attributes=res3 0.427 / 0.271 / 0.085 (global alone
0.435 / 0.262, part alone 0.403 / 0.267); attributes=res5 0.418 / 0.246 / 0.074; attributes=none
0.250 / 0.150 / 0.054 (one seed each).
Tables 4-5 fine-tuned from the ImageNet MobileNetV2 at 128 px: `python benchmarks/reproduce.py
--method midattr` (BENCHMARKS.md "Reproducing the papers' ablations").

dataset=market1501: 751 training identities (10 carved out for validation), 27 identity
attributes routed by Table 1 (`MARKET1501_PARTS`), 224 x 224 inputs (the paper's pool5_1 of
2048 x 7: 7 stripes), mirror augmentation:
  python -m launch.prepare_data --dataset market1501 --manual_dir RAW --data_dir ~/tfds
  python -m launch.train --config configs/midattr.py:dataset=market1501 --config.data_dir ~/tfds \
      --workdir /tmp/midattr_market
dataset=dukemtmc_reid: the same with DukeMTMC-reID's 23 attributes (`DUKEMTMC_PARTS`).

Paper (ResNet-50, single query), rank-1 / rank-5 / rank-10 / mAP (%):
  Table 2, Market-1501: global feature 86.58 / 94.48 / 96.73 / 68.08; local feature 86.34 / 94.00 /
    95.99 / 65.89; fusional feature 87.89 / 94.89 / 97.03 / 70.04.
  Table 3, DukeMTMC-reID, rank-1 / mAP: global 77.73 / 59.08; local 77.19 / 57.69; fusional 79.67 / 61.48.
Ablations on Market-1501, rank-1 / rank-5 / rank-10 / rank-20 / mAP (%):
  Table 4 (branches=global,descriptor=global): Baseline 1 (attributes=none) 81.24 / 91.58 / 94.02 /
    96.34 / 60.68; res5 84.59 / 93.67 / 95.53 / 97.14 / 64.89; res4 85.70 / 94.04 / 96.26 / 97.43 /
    65.87; res3 86.16 / 94.57 / 96.50 / 97.83 / 66.70.
  Table 5 (branches=part,descriptor=part): Baseline 2 (attributes=none) 79.65 / 91.83 / 94.69 / 95.41 /
    56.42; res5 83.88 / 93.23 / 95.27 / 96.15 / 61.51; res4 84.65 / 93.29 / 95.90 / 97.18 / 63.48;
    res3 85.24 / 93.78 / 96.05 / 97.00 / 65.15.
  Table 6 (attributes=none, both branches, mu = nu: add --config.midattr.nu=5.0; the paper does not
    give the value): global 82.10 / 92.61 / 94.74 / 96.70 / 59.74; local 79.75 / 90.94 / 94.15 /
    96.05 / 57.32; fusion 83.82 / 92.96 / 95.72 / 97.06 / 64.07.

Paper training: Caffe, SGD, lr 0.01 divided by 10 every 20k iterations, 50k iterations, batch 16,
mirror augmentation; mu = 5, nu = 4, 0.1 per attribute. Momentum, weight decay, dropout rate,
input size and the reduced part width are not given: 0.9, 5e-4, 0.5, 224 x 224 and 256 here.
"""
import ml_collections

from jaxret.data import synthetic
from jaxret.data.builders import dukemtmc_reid, market1501
from jaxret.training.config import base_config, parse_arg

# Table 1, parts 0..3 from the top (the paper's Part 1..4), by the prepared datasets' attribute names.
_UPPER, _LOWER, _ALL = (0, 1), (2, 3), (0, 1, 2, 3)
MARKET1501_PARTS = {
    "age": _ALL, "gender": _ALL, "hair": (0,), "hat": (0,), "up": _UPPER,  # up: sleeve length
    "backpack": _UPPER, "bag": _UPPER, "handbag": _UPPER, "down": _LOWER, "clothes": _LOWER,  # down: length
    **{name: _UPPER for name in market1501.ATTRIBUTE_NAMES if name.startswith("up") and name != "up"},
    **{name: _LOWER for name in market1501.ATTRIBUTE_NAMES if name.startswith("down") and name != "down"}}
DUKEMTMC_PARTS = {
    "gender": _ALL, "hat": (0,), "top": _UPPER,  # top: long / short upper-body clothing (Table 1's sleeve length)
    "backpack": _UPPER, "bag": _UPPER, "handbag": _UPPER, "boots": (3,), "shoes": (3,),  # shoes: dark / light
    **{name: _UPPER for name in dukemtmc_reid.ATTRIBUTE_NAMES if name.startswith("up")},
    **{name: _LOWER for name in dukemtmc_reid.ATTRIBUTE_NAMES if name.startswith("down")}}
# Synthetic creatures: the parts holding at least 15% of the pixels an attribute changes (64 px
# renders, tests/methods/test_midattr.py checks it). The top quarter is mostly background.
SYNTHETIC_PARTS = {
    "head_colour": (1, 2), "head_shape": (1, 2), "head_size": (1, 2),
    "body_colour": (1, 2), "body_shape": (1, 2), "body_pattern": (1, 2), "body_size": (1, 2),
    "wing_colour": (1, 2), "wing_shape": (1, 2), "tail_shape": (1, 2),
    "leg_count": (2, 3), "leg_length": (2, 3)}
# dataset option -> (attribute names in the dataset's order, their parts)
DATASETS = {"synthetic": (synthetic.ATTRIBUTE_NAMES, SYNTHETIC_PARTS),
            "market1501": (market1501.ATTRIBUTE_NAMES, MARKET1501_PARTS),
            "dukemtmc_reid": (dukemtmc_reid.ATTRIBUTE_NAMES, DUKEMTMC_PARTS)}


def attribute_parts(names: tuple[str, ...], parts: dict[str, tuple[int, ...]]) -> tuple:
  """`((name, parts), ...)` in the dataset's attribute order; a ValueError names a missing attribute."""
  missing = [name for name in names if name not in parts]
  if missing:
    raise ValueError(f"configs/midattr.py: attributes {missing} have no parts: expected every one of {names}")
  return tuple((name, tuple(parts[name])) for name in names)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/midattr.py", dataset="synthetic", attributes="res3", branches="both",
                      descriptor="")
  if options["dataset"] not in DATASETS:
    raise ValueError(f"configs/midattr.py: dataset={options['dataset']!r}; expected one of {sorted(DATASETS)}")
  config = base_config()
  config.method = "midattr"
  config.dataset = options["dataset"]

  config.midattr = ml_collections.ConfigDict()
  config.midattr.attribute_layer = options["attributes"]  # res3 (paper) | res4 | res5 | none
  config.midattr.attribute_parts = attribute_parts(*DATASETS[options["dataset"]])
  config.midattr.num_parts = 4
  config.midattr.branches = options["branches"]  # both | global | part
  both = options["branches"] == "both"
  config.midattr.descriptor = options["descriptor"] or ("fused" if both else options["branches"])
  config.midattr.part_init = "copy"  # copy (the backbone's last stage, "duplicate conv5") | random
  config.midattr.part_stripes = 0  # 0: one stripe per row of the last-stage map
  config.midattr.part_dim = 256
  config.midattr.part_descriptor = "reduced"  # reduced (after the 1x1 conv) | pooled (pool5_1)
  config.midattr.dropout = 0.5
  config.midattr.mu = 5.0
  config.midattr.nu = 4.0
  config.midattr.attribute_weight = 0.1

  config.eval.protocol = "reid"
  config.eval.metric = "euclidean"
  config.backbone = "resnet50"
  config.image_size = 224
  config.batch_size = 16
  config.total_steps = 50000
  config.log_every = 100
  config.eval_every = 5000
  config.checkpoint_every = 5000
  config.optimizer.name = "sgd"
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.learning_rate = 0.01
  config.optimizer.schedule = "step"
  config.optimizer.decay_boundaries = (20000, 40000)
  config.optimizer.decay_factor = 0.1
  config.data.augment = "resize"
  config.data.random_flip = True  # the paper's mirror augmentation

  if options["dataset"] == "synthetic":  # small and fast: the settings of configs/a3m.py
    config.backbone = "resnet18"
    config.backbone_width = 0.25
    config.init_weights = "none"  # a width-0.25 net from scratch: no ImageNet counterpart
    config.image_size = 64
    config.batch_size = 32
    config.total_steps = 600
    config.log_every = 50
    config.eval_every = 300
    config.checkpoint_every = 300
    config.midattr.part_dim = 32
    config.optimizer.learning_rate = 0.01
    config.optimizer.warmup_steps = 50
    config.optimizer.schedule = "cosine"
    config.optimizer.decay_boundaries = ()
  config.lock()
  return config
