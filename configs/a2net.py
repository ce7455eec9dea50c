"""A2-Net: attribute-aware hash codes (jaxret/methods/a2net.py, papers/a2net.txt).

Arguments after the colon, comma-separated: `dataset=NAME` (default synthetic), `bits=12 | 24 |
32 | 48` (default 32), `variant=vanilla | attention | reconstruction | a2net` (the paper's
Table 2 rows; vanilla is ADSH on the backbone). Protocol (as ExchNet and the paper): queries =
the test split, database = the training split, mAP over the whole Hamming ranking, reported with
ties broken by database index ("map") and tie-aware ("map_tie_aware"). The database's codes are
the learned Z (as ADSH's and SEMICON's public code score); "reencoded/map" and
"reencoded/map_tie_aware" rank against the network's codes of the training images instead.
5 training images per class are held out as validation queries for model selection (the paper
selects on nothing stated; its group's public code keeps the best test mAP, which jaxret does
not do). The paper's datasets start from ImageNet weights (`config.init_weights=imagenet`:
`~/.cache/jaxret/weights/resnet50.npz`, made once by `launch.convert_weights`, README); add `--config.data_dir ~/tfds`.

Every dataset uses ADSH's and SEMICON's balanced similarity (`a2net.similarity = "balanced"`:
S = -r for dissimilar pairs); `similarity=paper` (S = -1) is the option: from scratch on the
synthetic set it collapsed every run to one code for all images at the first code update (test
bit correlation 1.0, mAP 0.0187 / 0.0075 tie-aware, chance 0.005; BENCHMARKS.md).
An outer iteration reads a random Omega of `data.subset_size` training images
`data.subset_epochs` = 3 times (ADSH's public code; SEMICON's trains 30; the paper says "the
total number of training epochs is 20" without saying per what), then updates Z.

dataset=synthetic (default): the embedded creatures (200 classes, 30 images each: 15 database,
5 validation, 10 query images per class), ResNet-18 at width 0.25 on 64 px, batch 32, outer
iterations of 3 passes over 640 images (60 steps), 10 of them (600 steps):
  python -m launch.train --config configs/a2net.py:dataset=synthetic,bits=32 --workdir /tmp/a2net
Measured before the encoder-init fix (2-core CPU, seed 0; BENCHMARKS.md "A2-Net on synthetic
creatures"): test mAP against Z 0.0146 / 0.0140 tie-aware, against the re-encoded database
0.0084 / 0.0082, bit correlation of the test codes 0.09 (without Eq. 8, variant=reconstruction:
0.0131 / 0.0126 and 0.0080 / 0.0080).

dataset=cub | aircraft | food101 | nabirds | vegfru (jaxret datasets cub, fgvc_aircraft, food101,
nabirds, vegfru), e.g.
  python -m launch.prepare_data --dataset cub --manual_dir RAW --data_dir ~/tfds
  python -m launch.train --config configs/a2net.py:dataset=cub,bits=48 --config.data_dir ~/tfds \
      --workdir /tmp/a2net_cub48

Paper training: ResNet-50, 224 x 224 (random crop of 256), batch 16, SGD (no momentum stated:
"standard mini-batch SGD"), weight decay 1e-4; per outer iteration 2,000 sampled images (4,000
for NABirds and VegFru), here read 3 times; T_max = 60 outer iterations, lr / 10 at the 50th
(70 and 60 for sets with more than 20,000 training images: Food101, NABirds, VegFru);
lambda = 1, alpha = 1 / (n k), beta = 12 / k. The paper gives no learning rate: 1e-3 is ADSH's.

Paper, Table 1, mAP (%) at 12 / 24 / 32 / 48 bits:
  CUB200-2011  33.83 / 61.01 / 71.61 / 77.33     Aircraft  40.00 / 63.66 / 72.51 / 81.37
  Food101      46.44 / 66.87 / 74.27 / 82.13     NABirds    8.20 / 19.15 / 24.41 / 35.64
  VegFru       25.52 / 44.73 / 52.75 / 69.77
Paper, Table 2 (variant=), CUB200-2011 and Food101, mAP (%) at 12 / 24 / 32 / 48 bits:
  vanilla         20.03 / 50.33 / 61.68 / 65.43   35.64 / 40.93 / 42.89 / 48.81
  attention       27.42 / 58.17 / 68.24 / 76.10   41.33 / 65.07 / 70.06 / 78.51
  reconstruction  33.31 / 60.65 / 71.28 / 77.10   45.02 / 67.49 / 73.57 / 81.63
  a2net           33.83 / 61.01 / 71.61 / 77.33   46.44 / 66.87 / 74.27 / 82.13
"""
import ml_collections

from jaxret.training.config import base_config, parse_arg

# dataset option -> (jaxret dataset, images per outer iteration, outer iterations, lr drop at)
DATASETS = {"synthetic": ("synthetic", 640, 10, 0), "cub": ("cub", 2000, 60, 50),
            "aircraft": ("fgvc_aircraft", 2000, 60, 50), "food101": ("food101", 2000, 70, 60),
            "nabirds": ("nabirds", 4000, 70, 60), "vegfru": ("vegfru", 4000, 70, 60)}
EPOCHS_PER_ITERATION = 3  # passes over each Omega before a Z update: ADSH's public code (SEMICON's: 30)
BITS = (12, 24, 32, 48)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/a2net.py", dataset="synthetic", bits="32", variant="a2net")
  if options["dataset"] not in DATASETS:
    raise ValueError(f"configs/a2net.py: dataset={options['dataset']!r}; expected one of {sorted(DATASETS)}")
  if not options["bits"].isdigit() or int(options["bits"]) < 1:
    raise ValueError(f"configs/a2net.py: bits={options['bits']!r}; expected a positive integer (the paper: {BITS})")
  config = base_config()
  config.method = "a2net"
  config.dataset, num_samples, outer_iterations, lr_drop = DATASETS[options["dataset"]]

  config.a2net = ml_collections.ConfigDict()
  config.a2net.bits = int(options["bits"])  # k
  config.a2net.variant = options["variant"]  # vanilla | attention | reconstruction | a2net (Table 2)
  config.a2net.num_attention = 0  # C attention maps; 0 = bits (the paper)
  config.a2net.transform_dim = 256  # D, channels of phi_local / phi_global (not stated in the paper)
  config.a2net.transform_depth = 2  # layers of phi: a 1x1 conv then 3x3 convs ("a stack of convolutions")
  config.a2net.lam = 1.0  # lambda of Eq. 7 / 13
  config.a2net.alpha_times_nk = 1.0  # alpha = this / (n k)
  config.a2net.beta_times_k = 12.0  # beta = this / k
  # ADSH's ||z_i - u_i||^2 weight. Not in Eq. 13, but the paper trains "following [17]" (ADSH,
  # gamma = 200, as does the group's SEMICON code); gamma = 0 is Eq. 13 as printed.
  config.a2net.gamma = 200.0
  # Z before the first update: "zeros" (ADSH's public code: the first outer iteration then
  # trains only the other terms) or "random" (uniform {-1, +1}: each class starts with its
  # images' random codes as targets). Neither avoided the collapse on the synthetic set.
  config.a2net.database_init = "random"
  # S_ij of a dissimilar pair: "balanced" (ADSH's and SEMICON's public code's "soft constraint"
  # -r, r = similar / dissimilar pairs; see jaxret.losses.hashing) or "paper" (-1, Eqs. 11 and
  # 13). Balanced by default: with -1 and many classes, one code c for every image and Z = -c
  # fit all dissimilar pairs, and every synthetic run collapsed to it (BENCHMARKS.md).
  config.a2net.similarity = "balanced"

  # One outer iteration: Omega = num_samples random training images, read subset_epochs times
  # (each pass reshuffled), then the Z update (update_state), then a new Omega.
  config.data.subset_size = num_samples
  config.data.subset_epochs = EPOCHS_PER_ITERATION

  config.eval.protocol = "hashing"
  config.backbone = "resnet50"
  config.batch_size = 16
  config.state_update_every = num_samples * EPOCHS_PER_ITERATION // config.batch_size  # one outer iteration
  config.total_steps = outer_iterations * config.state_update_every
  config.log_every = 100
  config.eval_every = 10 * config.state_update_every
  config.checkpoint_every = config.eval_every
  config.optimizer.name = "sgd"
  config.optimizer.momentum = 0.0
  config.optimizer.weight_decay = 1e-4
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "step"
  config.optimizer.decay_boundaries = (lr_drop * config.state_update_every,)
  config.optimizer.decay_factor = 0.1
  config.image_size = 224
  config.data.augment = "random_crop"
  config.data.resize_size = 256

  if options["dataset"] == "synthetic":  # small and fast: the settings of configs/a3m.py
    config.backbone = "resnet18"
    config.backbone_width = 0.25
    config.init_weights = "none"  # a width-0.25 net from scratch: no ImageNet counterpart
    config.a2net.transform_dim = 32
    config.batch_size = 32
    config.state_update_every = num_samples * EPOCHS_PER_ITERATION // config.batch_size
    config.total_steps = outer_iterations * config.state_update_every
    config.image_size = 64
    config.data.augment = "resize"
    config.data.resize_size = 0
    config.data.synthetic_images_per_class = 30
    config.log_every = 50
    config.eval_every = 300
    config.checkpoint_every = 300
    config.optimizer.momentum = 0.9
    config.optimizer.learning_rate = 0.005  # 0.05 diverged (NaN) after the first code update
    config.optimizer.warmup_steps = 50
    config.optimizer.schedule = "cosine"
    config.optimizer.decay_boundaries = ()
  config.lock()
  return config
