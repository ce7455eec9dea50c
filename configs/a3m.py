"""A3M: attribute-guided + category-guided attention (jaxret/methods/a3m.py, papers/a3m.txt).

Arguments after the colon, comma-separated: `dataset=NAME` (default synthetic), `variant=a3m |
baseline2 | att1 | att2` (the paper's ablations; Baseline-1 is configs/baseline.py), `dim=D`
(embedding size; 0 = f_final itself, d = 512). Other switches: `--config.a3m.use_attribute_labels=False`
("A3M w/o attr-label"); `--config.a3m.attention_norm=` `scale` (default: the paper's attention
logits divided by sqrt(d); raw, they saturate the sigmoids: jaxret/methods/a3m.py), `none` (the
paper as written), `batchnorm` (the public Keras code; with `--config.a3m.branch=batchnorm_relu`
its BatchNorm + ReLU branches).
The paper's datasets start from ImageNet weights (`config.init_weights=imagenet`:
`~/.cache/jaxret/weights/resnet50.npz`, made once by `launch.convert_weights`, README); add `--config.data_dir ~/tfds`.

dataset=synthetic (default): the embedded creatures with their 12 part attributes, a ResNet-18 at
width 0.25 on 64 px, 600 steps (about 6 minutes on a 2-core CPU, like configs/baseline.py):
  python -m launch.train --config configs/a3m.py --workdir /tmp/a3m
Scores Recall@K on the 100 held-out classes and attribute accuracy of their images.
Measured (2-core CPU, 600 steps, seeds 0 and 1; BENCHMARKS.md "A3M on synthetic creatures"): test
Recall@1 Baseline-1 0.766 / 0.741, Baseline-2 0.726 / 0.737, A3M 0.461 / 0.763 (attribute accuracy
0.35 / 0.38): at 64 px res5 has 2 x 2 regions, so this checks the machinery, not the paper's claim.
The paper's Table 1 fine-tuned from the ImageNet MobileNetV2 at 128 px, every row at seeds 0 and 1:
`python benchmarks/reproduce.py --method a3m` (BENCHMARKS.md "Reproducing the papers' ablations").

dataset=market1501: person re-ID (751 training identities, 10 carved out for validation),
27 identity attributes, 448 x 224 inputs, Euclidean distance, d = 512 features as the embedding:
  python -m launch.prepare_data --dataset market1501 --manual_dir RAW --data_dir ~/tfds
  python -m launch.train --config configs/a3m.py:dataset=market1501 --config.data_dir ~/tfds \
      --workdir /tmp/a3m_market
Paper, Table 1 (ResNet-50), rank-1 / rank-5 / rank-10 / rank-20 / mAP (%):
  Baseline-1 73.90 / 87.68 / 91.54 / 94.80 / 47.78;  Baseline-2 80.07 / 91.06 / 94.12 / 96.08 / 59.13;
  A3M w/o attr-label 85.21 / 94.57 / 96.53 / 97.92 / 66.42;  A3M 86.54 / 95.16 / 97.03 / 98.30 / 68.97.
  (The text of the table lists rank-5..20 for 7 of its 14 rows; these are the last four.)
  Att-1 and Att-2 are only plotted (Figure 5), between Baseline-2 and A3M.
Deviation: inputs are resized to 448 x 224 without the paper's random crop (jaxret's random_crop
resizes the shorter side to at least the larger input side, which is wrong for 2:1 crops).

dataset=cub_cls: CUB-200-2011 classification (the paper's Table 2) with the 28 grouped attributes:
closed set, official train / test split, 5 training images per class carved out for
validation, top-1 `accuracy` of L_add's classifier plus attribute accuracy on the test split.
224 x 224 (random crop of 256).
  python -m launch.train --config configs/a3m.py:dataset=cub_cls --config.data_dir ~/tfds \
      --workdir /tmp/a3m_cub_cls
Paper, Table 2, accuracy (%): Baseline-1 82.3, Baseline-2 84.3, A3M 86.2 (the public code's
weights file says 86.1 at 448 x 448 on ground-truth box crops, which jaxret does not crop to).
A value "none" of a CUB attribute group is -1 here (unknown, left out of the CE); the public
code trains it as a class.

dataset=compcars: CompCars web-nature model classification (the paper's Table 3) with 5 attributes
(speed, displacement, doors, seats, type), 448 x 448 (random crop of 512), closed set like cub_cls.
  python -m launch.train --config configs/a3m.py:dataset=compcars --config.data_dir ~/tfds \
      --workdir /tmp/a3m_compcars
Paper, Table 3, accuracy (%): Baseline-1 91.8, Baseline-2 94.1, A3M 95.4.
Baseline-1 for both: `configs/baseline.py:dataset=cub_cls` / `dataset=compcars` (A3M's network and schedule).

dataset=cub / cars196: zero-shot retrieval (CUB first 100 classes train, CARS196 first 98), no
attribute labels: K latent attributes (28 for CUB, the public code's number of groups; 5 for
CARS196, CompCars' number of car attributes; the paper does not say), an FC to 384 dims (dim=128
for the other size), 224 x 224 (random crop of 256), cosine similarity.
  python -m launch.train --config configs/a3m.py:dataset=cub --config.data_dir ~/tfds \
      --workdir /tmp/a3m_cub
Paper (InceptionBN, 384 dims; jaxret uses ResNet-50), Recall@1 / 2 / 4 / 8 (%):
  CUB-200-2011 (Table 4): Baseline-1 59.1 / 70.7 / 81.5 / 88.8; A3M 61.2 / 72.4 / 81.8 / 89.2.
  CARS196 (Table 5): Baseline-1 78.5 / 86.8 / 92.3 / 95.4; A3M 80.0 / 87.5 / 92.3 / 95.5.
  (NMI: the tables' text lists 4 values for 6 rows; the last, A3M's, reads 66.4 and 67.7.)

Paper training (all real datasets): SGD, momentum 0.9, weight decay 5e-4, batch 32, lr 1e-3 for
50 epochs then 1e-4 for 10; alpha = beta = 0.5; d = 512. total_steps below are 60 epochs of the
training images left after validation is carved out (classes for retrieval and re-ID, 5 images
per class for cub_cls and compcars: 4,994 and 13,861 images).
"""
import ml_collections

from jaxret.training.config import base_config, parse_arg

# dataset option -> (jaxret dataset, total steps = 60 epochs at batch 32)
DATASETS = {"synthetic": ("synthetic", 600), "market1501": ("market1501", 24000), "cub_cls": ("cub", 9400),
            "compcars": ("compcars", 26000), "cub": ("cub", 9900), "cars196": ("cars196", 13500)}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/a3m.py", dataset="synthetic", variant="a3m", dim="")
  if options["dataset"] not in DATASETS:
    raise ValueError(f"configs/a3m.py: dataset={options['dataset']!r}; expected one of {sorted(DATASETS)}")
  config = base_config()
  config.method = "a3m"
  config.dataset, config.total_steps = DATASETS[options["dataset"]]

  config.a3m = ml_collections.ConfigDict()
  config.a3m.variant = options["variant"]  # a3m | baseline2 | att1 | att2
  config.a3m.use_attribute_labels = True  # False: "A3M w/o attr-label"
  config.a3m.num_latent_attributes = 0  # K without attribute labels; 0 = the dataset's number of attributes
  # scale (paper's logits / sqrt(d)) | none (paper as written: saturates) | batchnorm (public Keras code)
  config.a3m.attention_norm = "scale"
  config.a3m.branch = "linear"  # linear (paper: 1x1 conv) | batchnorm_relu (public code: conv, BN, ReLU)
  config.a3m.feature_dim = 512  # d
  config.a3m.alpha = 0.5  # weight of L_category (Eq. 11)
  config.a3m.beta = 0.5  # weight of the mean attribute loss (Eq. 11)
  config.embedding_dim = 0  # 0: f_final (d dims) is the embedding; else an FC to this size

  # The paper's fine-tuning of an ImageNet ResNet-50.
  config.backbone = "resnet50"
  config.batch_size = 32
  config.log_every = 100
  config.eval_every = 2000
  config.checkpoint_every = 2000
  config.optimizer.name = "sgd"
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "step"
  config.optimizer.decay_boundaries = (config.total_steps * 5 // 6,)  # 1e-4 for the last 10 of 60 epochs
  config.optimizer.decay_factor = 0.1
  config.image_size = 224
  config.data.augment = "random_crop"
  config.data.resize_size = 256

  if options["dataset"] == "synthetic":  # small and fast: the settings of configs/baseline.py
    config.backbone = "resnet18"
    config.backbone_width = 0.25
    config.init_weights = "none"  # a width-0.25 net from scratch: no ImageNet counterpart
    config.a3m.feature_dim = 128
    config.embedding_dim = 128
    config.image_size = 64
    config.data.augment = "resize"
    config.data.resize_size = 0
    config.log_every = 50
    config.eval_every = 300
    config.checkpoint_every = 300
    # Half configs/baseline.py's 0.05: Eq. 11 sums three cross-entropies (at 0.05 an earlier
    # session saw one of two seeds stall at Recall@1 0.14).
    config.optimizer.learning_rate = 0.025
    config.optimizer.warmup_steps = 50
    config.optimizer.schedule = "cosine"
    config.optimizer.decay_boundaries = ()
  elif options["dataset"] == "market1501":
    config.image_height, config.image_size = 448, 224
    config.data.augment = "resize"
    config.data.resize_size = 0
    config.eval.protocol = "reid"
    config.eval.metric = "euclidean"
  elif options["dataset"] == "compcars":
    config.image_size = 448
    config.data.resize_size = 512
  if options["dataset"] in ("cub_cls", "compcars"):
    config.eval.protocol = "classification"
  elif options["dataset"] in ("cub", "cars196"):
    config.a3m.use_attribute_labels = False
    config.a3m.num_latent_attributes = 28 if options["dataset"] == "cub" else 5
    config.embedding_dim = 384
  if options["dim"]:
    config.embedding_dim = int(options["dim"])
  config.lock()
  return config
