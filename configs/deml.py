"""DeML: hybrid-attention decoupled metric learning (jaxret/methods/deml.py, papers/deml.txt).

Arguments after the colon, comma-separated: `dataset=NAME` (synthetic | cub | cars196 | sop |
inshop; default synthetic), `I=` scales (object-attention root learners), `J=` channel-attention
learners per scale, `adversary=grl | hinge | none` (the paper's gradient-reversal adversary, the
public code's contrastive hinge, or no diversity term: Table 4's "without L_adv").
The paper's datasets start from ImageNet weights (`config.init_weights=imagenet`:
`~/.cache/jaxret/weights/resnet50.npz`, made once by `launch.convert_weights`, README); add `--config.data_dir ~/tfds`.
The paper's backbone is GoogLeNet-V1; jaxret splits a ResNet-50 (or a MobileNetV2) after res3 (FNet)
and runs the OAM on res4 and res5.

dataset=synthetic (default): the embedded creatures, ResNet-18 at width 0.25 on 64 px, 128 dims,
P x K batches of 8 classes x 4 images, Adam; scores Recall@K on the 100 held-out classes:
  python -m launch.train --config configs/deml.py:dataset=synthetic,I=2,J=2 --workdir /tmp/deml
Measured with --config.total_steps=100 (2-core CPU shared with other jobs: 21 minutes including
compilation and evaluation; 600 steps did not fit the session): test Recall@1/2/4/8 0.062 / 0.106
/ 0.174 / 0.276 (chance about 0.01), validation Recall@1 0.365 (10 classes), before issue 18's
fixes (untied learners, the old crop box, shared BatchNorm statistics).
Table 4 on this data (benchmarks/deml_adversary.py: I=1, J=4, 160 steps, seed 0; 2-core CPU
shared with other jobs, about 5 minutes per variant), test set (100 unseen classes), tied learners:
  adversary   sim (cos CA_j, CA_j')   metric agreement   R@1 / R@8
  none         0.85 +- 0.02            0.70               0.038 / 0.200
  grl          0.05 +- 0.04            0.66               0.087 / 0.336
  hinge        0.09 +- 0.03            0.09               0.065 / 0.264
Without an adversary the tied learners are nearly alike, as Table 4's 0.92; both diversity terms
bring "sim" near 0 in 160 steps (the paper: -0.08 after 15k steps from ImageNet weights).
"metric agreement" (correlation of two learners' similarity matrices) shows the hinge also makes
the learners rank images differently, while the grl game mostly turns their outputs apart.
160 steps from scratch is short: Recall@K is far from converged (BENCHMARKS.md keeps the runs
before issue 18, with untied learners).

dataset=cub (CUB-200-2011, first 100 classes train) / cars196 (first 98 classes):
  python -m launch.train --config configs/deml.py:dataset=cub,I=3,J=3 --config.data_dir ~/tfds \
      --workdir /tmp/deml_cub
dataset=sop (Stanford Online Products, 11,318 classes train) / inshop (In-Shop query vs gallery):
  python -m launch.train --config configs/deml.py:dataset=sop,I=2,J=4 --config.data_dir ~/tfds \
      --workdir /tmp/deml_sop

Paper (GoogLeNet-V1, d = 512), Recall@K (%):
Table 1, effect of L_act, R@1 CUB / CARS:   U64 50.0 / 65.4;  U64+L_act 50.9 / 67.1;
  U192 52.4 / 68.3;  U192+L_act 54.9 / 74.6;  U384 53.0 / 69.1;  U384+L_act 55.6 / 77.4;
  U512 52.9 / 68.4;  U512+L_act 56.2 / 77.6.
Table 2, effect of the attention modules, R@1 of the holistic embedding H (and of each OA root
learner, 1st / 2nd / 3rd scale), CUB; CARS:
  (I=1,J=1) 56.1; 77.9          (I=1,J=4) 56.6; 81.1          (I=1,J=8) 59.0; 82.5
  (I=2,J=1) 60.9 (54 / 58.8); 83.4 (76.9 / 79.2)    (I=2,J=4) 61.7 (54.9 / 59.7); 84.8 (77.7 / 79.9)
  (I=3,J=1) 64.9 (54 / 58 / 60.1); 85.6 (75.4 / 77.5 / 78.9)
  (I=3,J=3) 65.4 (54.1 / 58.4 / 60.6); 86.3 (75.3 / 78.9 / 80.4)
Table 3, DeML(I=3,J=3) (SOP: I=2,J=4):
  CUB R@1/2/4/8 65.4 / 75.3 / 83.7 / 89.5;  CARS R@1/2/4/8 86.3 / 91.2 / 94.3 / 97.0;
  SOP R@1/10/100/1000 76.1 / 88.4 / 94.9 / 98.1;  In-Shop R@1/10/20/30/40/50 88.2 / 97.0 / 98.0 / 98.3 / 98.6 / 98.8.
  baseline U512: CUB 52.9 / 65.0 / 75.4 / 83.6; CARS 68.4 / 78.7 / 86.0 / 91.2;
  SOP 68.7 / 84.0 / 92.7 / 97.6; In-Shop 81.8 / 94.1 / 95.7 / 96.5 / 97 / 97.3.
Table 4, effect of the adversary, R@1/2/4/8 and "sim" (mean cosine similarity between CA learners):
  CUB  DeML(I=1,J=8) 59.0 / 70.2 / 79.7 / 87.4, sim -0.08 +- 0.01;  without L_adv 52.0 / 63.9 / 74.0 / 82.3,
       sim 0.92 +- 0.02;  U64+L_act 50.9 / 62.8 / 74.0 / 82.6.
  CARS DeML(I=1,J=8) 82.5 / 89.5 / 93.5 / 96.1, sim -0.09 +- 0.01;  without L_adv R@1/2/4/8 68.2 / 78.3 / 85.4 / 90.9.

Paper training: Adam, lr 1e-5, weight decay 2e-4, learners at 10x; 15k (CUB), 25k (CARS), 100k
(SOP, In-Shop) iterations; lambda0 = 1, lambda1 = 0.014, lambda2 = 0.25; alpha = 2, beta = 0.5,
negative cost 35. The batch size is not stated: jaxret uses 64 (16 classes x 4 images).
"""
import ml_collections

from jaxret.training.config import base_config, parse_arg

# dataset option -> (jaxret dataset, training iterations, default I, default J, Recall@K ks)
DATASETS = {
    "synthetic": ("synthetic", 600, 2, 2, (1, 2, 4, 8)),
    "cub": ("cub", 15000, 3, 3, (1, 2, 4, 8)),
    "cars196": ("cars196", 25000, 3, 3, (1, 2, 4, 8)),
    "sop": ("stanford_online_products", 100000, 2, 4, (1, 10, 100, 1000)),
    "inshop": ("inshop", 100000, 2, 4, (1, 10, 20, 30, 40, 50)),
}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = parse_arg(arg, "configs/deml.py", dataset="synthetic", I="", J="", adversary="grl")
  if options["dataset"] not in DATASETS:
    raise ValueError(f"configs/deml.py: dataset={options['dataset']!r}; expected one of {sorted(DATASETS)}")
  config = base_config()
  config.method = "deml"
  config.dataset, config.total_steps, num_scales, num_branches, config.eval.ks = DATASETS[options["dataset"]]

  config.deml = ml_collections.ConfigDict()
  config.deml.num_scales = int(options["I"] or num_scales)  # I
  config.deml.num_branches = int(options["J"] or num_branches)  # J
  config.deml.adversary = options["adversary"]  # grl (paper, Eq. 4) | hinge (public code) | none
  config.deml.tied_learners = True  # one kernel per scale, no bias (Sec. 3.2, public code) | False: J kernels + biases
  config.deml.per_scale_batch_stats = True  # BatchNorm statistics of each scale's inputs | False: shared
  config.deml.split = "res3"  # last FNet stage: the CAMs act on its map
  config.deml.attention_layers = ("res4", "res5")  # GNet maps the OAM walks on
  config.deml.walk_steps = 10  # T of Eq. 3
  config.deml.cam_hidden = 64  # W1: C -> 64, W2: 64 -> C
  config.deml.adversary_dim = 64  # width of the adversary F (Dense - ReLU - Dense)
  config.deml.adversary_input = "raw"  # raw (Eq. 4) | unit (L2-normalised learners: bounded, for training from scratch)
  config.deml.grl_scale = 1.0  # the gradient-reversal layer's factor
  config.deml.lambda0 = 1.0  # Eq. 4
  config.deml.lambda1 = 0.014  # Eq. 6, activation decay
  config.deml.lambda2 = 0.25  # Eq. 6, L_ntri
  config.deml.alpha = 2.0  # Eq. 5
  config.deml.beta = 0.5
  config.deml.positive_cost = 1.0  # gamma_pq, s_pq = 1
  config.deml.negative_cost = 35.0  # gamma_pq, s_pq = 0
  config.deml.hinge_margin = 2.0  # adversary=hinge: the public code's margin and weight
  config.deml.hinge_weight = 0.2  # per pair of learners j < j' (one weighted loss layer each)
  config.embedding_dim = 512  # d: I J learners of d // (I J) dims

  config.backbone = "resnet50"
  config.batch_size = 64
  config.data.classes_per_batch = 16
  config.image_size = 224
  config.data.augment = "random_crop"
  config.data.resize_size = 256
  config.log_every = 100
  config.eval_every = 2500
  config.checkpoint_every = 2500
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-5
  config.optimizer.weight_decay = 2e-4
  config.optimizer.schedule = "constant"
  config.optimizer.lr_multipliers = (("^learners_", 10.0),)

  if options["dataset"] == "synthetic":  # small and fast, trained from scratch
    config.backbone = "resnet18"
    config.backbone_width = 0.25
    config.init_weights = "none"  # a width-0.25 net from scratch: no ImageNet counterpart
    config.embedding_dim = 128
    config.image_size = 64
    config.batch_size = 32
    config.data.classes_per_batch = 8
    config.data.augment = "resize"
    config.data.resize_size = 0
    config.log_every = 50
    config.eval_every = 300
    config.checkpoint_every = 300
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 50
    config.optimizer.schedule = "cosine"
    # From scratch at this learning rate the raw game of Eq. 4 diverges (jaxret/methods/deml.py).
    config.deml.adversary_input = "unit"
  elif options["dataset"] in ("sop", "inshop"):
    config.eval_every = 10000
    config.checkpoint_every = 10000
  config.lock()
  return config
