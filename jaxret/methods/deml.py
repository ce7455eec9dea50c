"""DeML: hybrid-attention decoupled metric learning (Chen & Deng, CVPR 2019; papers/deml.txt).

The embedding is decoupled into I object-attention (OA) root learners, one per scale, each made
of J channel-attention (CA) sub-learners of `d / (I J)` dims (Eq. 1):
- scale i sees the image `x^i`: the input for i = 1, then a crop of `x^(i-1)` around the
  object attention of scale i-1, zoomed back to the input size (`jaxret.ops.crop_zoom`);
- FNet (the backbone up to `deml.split`) encodes `x^i` into `U`; J CAMs (Sec. 3.2) reweight its
  channels, `cap_j = U * sigmoid(W2_j relu(W1_j GAP(U)))` with W1: C -> 64, W2: 64 -> C, no bias;
- GNet (the rest of the backbone, shared by the J branches: one batch of J B maps) and global
  average pooling feed J linear learners `CA_(i,j)`; by default (`deml.tied_learners`) they share
  one kernel `[C, d/(IJ)]` without bias, the "shared embedding layers" of Sec. 3.2 and the public
  code's tied `param { name: "w" }`, so the CAMs are all that tells them apart (the remark after
  Eq. 4); `tied_learners=False`: J kernels `[J, C, d/(IJ)]` and biases (one einsum);
- the object attention of scale i is the random walk (Eqs. 2-3, `jaxret.ops.random_walk`) on
  GNet's `deml.attention_layers` (the paper: inception4e and 5b; here res4 and res5), resized to
  the image and averaged over the layers and the J branches.
Losses: binomial deviance per CA learner, averaged over learners (Eq. 5); activation decay and
`L_ntri` (Eq. 6); and the diversity term between the J learners of each scale, summed over scales:
- `deml.adversary = "grl"` (the paper, Eq. 4): an adversary F^i (per scale, shared by its J
  learners; Dense - ReLU - Dense of `adversary_dim`, the paper's Fig. 3c is not in the text)
  reads the learners through a gradient-reversal layer; `lambda0 sum_{j,j'} ||F(CA_j) - F(CA_j')||^2`
  is minimised by F and maximised by everything before it. Eq. 4 feeds F the raw learner
  outputs (`adversary_input = "raw"`); the maximising side can then grow their norm without
  bound, which the paper's small learning rate (Adam 1e-5, from ImageNet weights) keeps in check
  but training from scratch does not (measured on synthetic at Adam 1e-3: learner norms 4 ->
  170, L_adv 1e3 -> 7e5, the metric loss stuck at 35, every image mapped to one direction).
  `adversary_input = "unit"` feeds F the L2-normalised learners (the form the test embedding
  and the metric loss use), which bounds the game;
- `"hinge"` (the public Caffe code): the contrastive hinge pushing the J L2-normalised learner
  outputs of an image at least `hinge_margin` apart, one loss per pair j < j' at `hinge_weight`
  each (summed over the J (J - 1) / 2 pairs, as the code's one ContrastiveLoss layer per pair);
- `"none"`: no diversity term (Table 4's "without L_adv").
The test embedding is the concatenation of the I J L2-normalised learners.

The backbone is one module ("backbone", filled by `config.init_weights`) shared by the scales:
the paper's FNet^i / GNet^i notation suggests one copy per scale (the public Caffe code has one,
`conv1/7x7_s2`, `conv1/7x7_s2_`, ... without shared `param` names), which would also need one set
of ImageNet weights per scale. Its BatchNorm statistics are per scale (`deml.per_scale_batch_stats`,
default): the full images and the zoomed crops have different statistics, and one shared running
average would normalise every scale at test time with a blend of them (the paper's GoogLeNet-V1
has no BatchNorm, so the question does not arise there). Scale 1 uses `batch_stats["backbone"]`,
scale i > 1 `batch_stats[f"backbone_zoom{i - 1}"]` (same layout, `after_pretrained_backbone` copies
the ImageNet statistics into it); the parameters are the same arrays for every scale, not copies.
Within a scale, the J CAM branches share GNet's statistics (one batch of J B maps). The split at
`deml.split` = "res3" runs the OAM on the stride-16 and stride-32 maps (res4, res5), as on
GoogLeNet's inception4e / 5b; the CAMs then act at stride 8 where the paper's (after pool3) act
at stride 16 (splitting after res4 would leave GNet a single stage for the OAM's two layers).

Batches: P x K identity sampling (`config.data.classes_per_batch`) so that every image has
positives. Learners train at 10x the learning rate through `config.optimizer.lr_multipliers`.
"""
import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxret.backbones import get_backbone
from jaxret.losses.activation_decay import activation_decay, orthonormality_penalty
from jaxret.losses.binomial_deviance import binomial_deviance
from jaxret.losses.learner_diversity import (adversary_discrepancy, contrastive_hinge,
                                             mean_learner_similarity)
from jaxret.methods import Method, flax_model
from jaxret.ops.crop_zoom import attend_and_zoom
from jaxret.ops.grad_reverse import grad_reverse
from jaxret.ops.random_walk import object_attention
from jaxret.ops.unit_vectors import l2_normalize
from jaxret.user_errors import InputError

ADVERSARIES = ("grl", "hinge", "none")
ADVERSARY_INPUTS = ("raw", "unit")
STAGES = ("res2", "res3", "res4", "res5")


class ChannelAttention(nn.Module):
  """J CAMs (Sec. 3.2, the equation before Eq. 4) as einsums: U `[B, H, W, C]` ->
  cap `[J, B, H, W, C]`, `cap_j = U * sigmoid(W2_j relu(W1_j GAP(U)))`."""
  num_branches: int
  hidden: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, u: jax.Array) -> jax.Array:
    c = u.shape[-1]
    init = nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=0)
    w1 = self.param("squeeze", init, (self.num_branches, c, self.hidden)).astype(self.dtype)
    w2 = self.param("excite", init, (self.num_branches, self.hidden, c)).astype(self.dtype)
    pooled = jnp.mean(u, axis=(1, 2)).astype(self.dtype)  # Psi(U) [B, C]
    weights = jax.nn.sigmoid(jnp.einsum("jbh,jhc->jbc", nn.relu(jnp.einsum("bc,jch->jbh", pooled, w1)), w2))
    return u[None] * weights[:, :, None, None, :].astype(u.dtype)


class Learners(nn.Module):
  """J linear learners as one einsum: pooled features `[J, B, C]` -> `[B, J, features]`.

  `tied` (default; the paper's "shared embedding layers" of Sec. 3.2 and the public code, whose J
  InnerProduct layers of a scale share one `param { name: "w" }` with `bias_term: false`): one
  kernel `[C, features]` = `w_i^T` for the J learners of the scale, no bias, so that the CAMs are
  the only parts that differ between them (the remark after Eq. 4). Untied: J kernels
  `[J, C, features]` and biases `[J, features]`.
  """
  features: int
  tied: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    j, _, c = x.shape
    x = x.astype(self.dtype)
    if self.tied:
      kernel = self.param("kernel", nn.initializers.lecun_normal(), (c, self.features))
      return jnp.einsum("jbc,cd->bjd", x, kernel.astype(self.dtype))
    init = nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=0)
    kernel = self.param("kernel", init, (j, c, self.features))
    bias = self.param("bias", nn.initializers.zeros, (j, self.features))
    return jnp.einsum("jbc,jcd->bjd", x, kernel.astype(self.dtype)) + bias.astype(self.dtype)


class Adversary(nn.Module):
  """F^i of Eq. 4, shared by the J learners of a scale: `[B, J, d]` -> `[B, J, features]`."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.relu(nn.Dense(self.features, dtype=self.dtype, name="hidden")(x))
    return nn.Dense(self.features, dtype=self.dtype, name="out")(x)


class Model(nn.Module):
  """DeML(I, J) on a ResNet or MobileNetV2 split at `split` into FNet / GNet."""
  backbone: str
  backbone_width: float
  num_scales: int
  num_branches: int
  learner_dim: int
  tied_learners: bool = True
  per_scale_batch_stats: bool = True
  split: str = "res3"
  attention_layers: tuple[str, ...] = ("res4", "res5")
  walk_steps: int = 10
  cam_hidden: int = 64
  adversary: str = "grl"
  adversary_dim: int = 64
  adversary_input: str = "raw"
  grl_scale: float = 1.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> dict:
    """images `[B, H, W, 3]` -> float32 {"embedding": `[B, I J d]` (concatenated unit learners),
    "learners": CA outputs `[B, I, J, d]`, "attention": object attention `[B, I - 1, H, W]`,
    "boxes": crop boxes `[B, I - 1, 4]` (top, left, bottom, right in pixels of the previous
    scale's input), and with `adversary="grl"` "adversary": F^i(GRL(CA)) `[B, I, J, k]` (CA
    L2-normalised first with `adversary_input="unit"`)}."""
    chex.assert_rank(images, 4)
    b, h, w, _ = images.shape
    backbone = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype, name="backbone")
    gnet_start = STAGES[STAGES.index(self.split) + 1]
    x = images
    learners, attentions, boxes, adversaries = [], [], [], []
    for i in range(self.num_scales):  # sequential: each scale's input is cropped by the previous one
      net = functools.partial(backbone, train=train)
      if i > 0 and self.per_scale_batch_stats:  # scale i's own statistics, the backbone's parameters
        stats = self.variable("batch_stats", f"backbone_zoom{i}", lambda: backbone.variables["batch_stats"])
        net = functools.partial(_with_batch_stats, backbone, stats, train, not self.is_initializing())
      u = net(x, stop=self.split)[self.split]  # FNet^i
      caps = ChannelAttention(self.num_branches, self.cam_hidden, self.dtype, name=f"cam_{i}")(u)
      caps = caps.reshape(self.num_branches * b, *u.shape[1:])
      maps = net(caps, start=gnet_start)  # GNet^i, one batch for the J branches
      pooled = jnp.mean(maps["res5"], axis=(1, 2)).reshape(self.num_branches, b, -1)
      ca = Learners(self.learner_dim, self.tied_learners, self.dtype, name=f"learners_{i}")(pooled).astype(jnp.float32)
      learners.append(ca)
      if self.adversary == "grl":
        adversaries.append(Adversary(self.adversary_dim, self.dtype, name=f"adversary_{i}")(
            grad_reverse(l2_normalize(ca) if self.adversary_input == "unit" else ca, self.grl_scale)))
      if i + 1 < self.num_scales:
        attention = object_attention([maps[name] for name in self.attention_layers], (h, w), self.walk_steps)
        attention = jnp.mean(attention.reshape(self.num_branches, b, h, w), axis=0)
        x, box = attend_and_zoom(x, attention)
        attentions.append(attention)
        boxes.append(box)
    learners = jnp.stack(learners, axis=1)  # [B, I, J, d]
    unit = l2_normalize(learners)
    outputs = {"embedding": unit.reshape(b, -1), "learners": learners,
               "attention": jnp.stack(attentions, axis=1) if attentions else jnp.zeros((b, 0, h, w)),
               "boxes": jnp.stack(boxes, axis=1) if boxes else jnp.zeros((b, 0, 4))}
    if adversaries:
      outputs["adversary"] = jnp.stack(adversaries, axis=1)
    return {k: v.astype(jnp.float32) for k, v in outputs.items()}


def _with_batch_stats(backbone: nn.Module, stats, train: bool, update: bool, x: jax.Array, **stages) -> dict:
  """`backbone(x, train=train, **stages)` with the backbone's parameters but the BatchNorm
  statistics in the variable `stats` (the backbone's `batch_stats` layout), which training
  updates (when `update`: not at init)."""
  variables = {"params": backbone.variables["params"], "batch_stats": stats.value}
  # A Flax module keeps its parameters and statistics in one scope; other statistics for the same
  # parameters: apply an unbound clone to them (the parameter arrays are passed, not copied).
  bare = backbone.clone(parent=None)
  if not train:
    return bare.apply(variables, x, train=False, **stages)
  out, updates = bare.apply(variables, x, train=True, mutable=["batch_stats"], **stages)
  if update:
    stats.value = updates["batch_stats"]
  return out


def make_model(config: ml_collections.ConfigDict) -> Model:
  """The Model of `config`; raises a ValueError naming the config key at fault."""
  deml = config.deml
  if not config.backbone.startswith("resnet") and config.backbone != "mobilenet_v2":
    raise InputError(f"config.backbone={config.backbone!r}: DeML splits the backbone into FNet / GNet; expected "
                     "resnet18 / resnet34 / resnet50 / resnet101 / mobilenet_v2")
  for key in ("num_scales", "num_branches", "walk_steps", "cam_hidden", "adversary_dim"):
    if deml[key] < 1:
      raise InputError(f"config.deml.{key}={deml[key]}: expected a positive integer")
  if deml.adversary not in ADVERSARIES:
    raise InputError(f"config.deml.adversary={deml.adversary!r}: expected one of {ADVERSARIES}")
  if deml.adversary_input not in ADVERSARY_INPUTS:
    raise InputError(f"config.deml.adversary_input={deml.adversary_input!r}: expected one of {ADVERSARY_INPUTS}")
  if deml.split not in STAGES[:-1]:
    raise InputError(f"config.deml.split={deml.split!r}: expected one of {STAGES[:-1]} (the last FNet stage)")
  gnet = STAGES[STAGES.index(deml.split) + 1:]
  if not deml.attention_layers or not set(deml.attention_layers) <= set(gnet):
    raise InputError(f"config.deml.attention_layers={tuple(deml.attention_layers)}: expected GNet stages, a "
                     f"non-empty subset of {gnet} (after config.deml.split={deml.split!r})")
  learner_dim = config.embedding_dim // (deml.num_scales * deml.num_branches)  # floor, as the paper
  if learner_dim < 1:
    raise InputError(f"config.embedding_dim={config.embedding_dim}: expected at least I x J = "
                     f"{deml.num_scales * deml.num_branches} (one dimension per learner)")
  return Model(backbone=config.backbone, backbone_width=config.backbone_width, num_scales=deml.num_scales,
               num_branches=deml.num_branches, learner_dim=learner_dim, tied_learners=deml.tied_learners,
               per_scale_batch_stats=deml.per_scale_batch_stats, split=deml.split,
               attention_layers=tuple(deml.attention_layers), walk_steps=deml.walk_steps,
               cam_hidden=deml.cam_hidden, adversary=deml.adversary, adversary_dim=deml.adversary_dim,
               adversary_input=deml.adversary_input,
               grl_scale=deml.grl_scale, dtype=jnp.dtype(config.compute_dtype))


def after_pretrained_backbone(params, method_state, config: ml_collections.ConfigDict):
  """After `config.init_weights` filled the backbone: every scale's BatchNorm statistics
  (`batch_stats["backbone_zoom{i}"]`) start from the loaded ones."""
  del config
  stats = method_state["batch_stats"]
  zoom = {name: stats["backbone"] for name in stats if name.startswith("backbone_zoom")}
  return params, {**method_state, "batch_stats": {**stats, **zoom}}


def learner_kernels(params, num_scales: int, num_branches: int) -> jax.Array:
  """The kernel `w_ij^T` of every learner: `[I J, C, d]` (scale-major, as the embedding); a tied
  scale's one kernel `[C, d]` stands for each of its J learners (Eq. 6 sums over i and j)."""
  kernels = []
  for i in range(num_scales):
    kernel = params[f"learners_{i}"]["kernel"]
    kernels.append(jnp.broadcast_to(kernel, (num_branches, *kernel.shape)) if kernel.ndim == 2 else kernel)
  return jnp.concatenate(kernels, axis=0)


def metric_loss(learners: jax.Array, labels: jax.Array, deml: ml_collections.ConfigDict) -> jax.Array:
  """Eq. 5: learners `[B, L, d]` (L = I J) -> the binomial deviance averaged over the learners."""
  per_learner = jax.vmap(binomial_deviance, in_axes=(1, None, None, None, None, None))(
      learners, labels, deml.alpha, deml.beta, deml.positive_cost, deml.negative_cost)
  return jnp.mean(per_learner)


def total_loss(outputs: dict, params, labels: jax.Array, config: ml_collections.ConfigDict):
  """Eqs. 4-6 from the model's outputs: metric (Eq. 5) + activation decay and L_ntri (Eq. 6) +
  the diversity term of `deml.adversary` summed over scales (Eq. 4, or the public code's hinge)
  -> (loss, metrics). Metrics include "learner_similarity", Table 4's "sim" (J > 1)."""
  deml = config.deml
  learners = outputs["learners"]  # [B, I, J, d]
  b, num_scales, num_branches, d = learners.shape
  chex.assert_shape(labels, (b,))
  flat = learners.reshape(b, num_scales * num_branches, d)
  loss_metric = metric_loss(flat, labels, deml)
  loss_decay = activation_decay(flat, deml.lambda1)
  loss_ntri = orthonormality_penalty(learner_kernels(params, num_scales, num_branches), deml.lambda2)
  loss_diversity = jnp.zeros((), jnp.float32)
  metrics = {}
  if num_branches > 1:
    per_scale = jnp.moveaxis(learners, 1, 0)  # [I, B, J, d]
    if deml.adversary == "grl":
      discrepancy = jax.vmap(adversary_discrepancy)(jnp.moveaxis(outputs["adversary"], 1, 0))
      loss_diversity = deml.lambda0 * jnp.sum(discrepancy)
    elif deml.adversary == "hinge":
      hinge = jax.vmap(contrastive_hinge, in_axes=(0, None))(per_scale, deml.hinge_margin)
      loss_diversity = deml.hinge_weight * jnp.sum(hinge)
    metrics["learner_similarity"] = jnp.mean(jax.vmap(mean_learner_similarity)(per_scale))
  loss = loss_metric + loss_decay + loss_ntri + loss_diversity
  metrics.update(loss_metric=loss_metric, loss_activation_decay=loss_decay, loss_ntri=loss_ntri,
                 loss_diversity=loss_diversity, learner_norm=jnp.mean(jnp.linalg.norm(flat, axis=-1)))
  return loss, metrics


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """`total_loss` on a batch {"image" `[B, H, W, 3]`, "label" `[B]`} (train mode)."""
  del rng
  outputs, updates = make_model(config).apply(
      {"params": params, **method_state}, batch["image"], train=True, mutable=["batch_stats"])
  loss, metrics = total_loss(outputs, params, batch["label"], config)
  return loss, (metrics, {**method_state, **updates})


init_state = flax_model.init_state(make_model)
embed_fn = flax_model.eval_output(make_model, "embedding")  # the concatenated unit learners [B, I J d]
METHOD = Method("deml", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn,
                after_pretrained_backbone=after_pretrained_backbone, make_model=make_model)
