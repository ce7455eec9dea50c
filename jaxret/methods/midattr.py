"""Mid-level attributes + part branch for person re-ID (Zhang & Xu, 2018; papers/midattr.txt).

A ResNet (or MobileNetV2) backbone and three heads (Sec. 2.1, Fig. 2):
- global branch: GAP on the backbone's last stage ("pool5") -> dropout -> FC(n identities);
- part branch: a second copy of the last stage with its own weights, run on the backbone's
  second-to-last stage; horizontal average pooling into S stripes ("pool5_1", `[B, S, C5]`),
  a 1x1 conv (one kernel shared by the stripes) to `part_dim` channels, flattened -> dropout ->
  FC(n identities);
- attribute heads on a mid-level stage (`attribute_layer`: res3 = the paper's res3d, res4 =
  res4f, res5 = res5c): the map is cut into P = 4 horizontal parts, each max-pooled (`[B, P, C]`),
  and attribute k is predicted by one FC over the concatenation of the parts Table 1 assigns it
  to (`attribute_parts`, data in the config), softmax over its values (Eqs. 1-2).
- loss (Eq. 3): `mu L_global + nu L_local + sum_k lambda L_att_k`, mu = 5, nu = 4, lambda = 0.1.
- test descriptor (Sec. 3.3): L2-normalised global feature concatenated with the L2-normalised
  part feature, compared by Euclidean distance (`config.eval.metric = "euclidean"`).

Config (`config.midattr`):
- `attribute_layer`: "res3" | "res4" | "res5" | "none" (no attribute heads: Baselines 1 and 2,
  Table 6).
- `attribute_parts`: one `(name, parts)` pair per attribute of the dataset, in the dataset's
  attribute order; parts are 0-based, 0 the top (the paper's Part 1). `num_parts`: P (4).
- `branches`: "both" | "global" | "part": the identity branches trained (Tables 4 and 5 train
  one branch; Tables 2, 3 and 6 both).
- `descriptor`: "fused" | "global" | "part": the test descriptor (Table 2's three rows);
  it must use trained branches.
- `part_init`: "copy" (the paper "duplicates conv5": the part branch starts as a copy of the
  backbone's last stage, ImageNet weights included with `config.init_weights`) | "random".
- `part_stripes`: S; 0 = one stripe per row of the last-stage map (the paper's 7 at 224 px).
- `part_dim`: channels of the 1x1 reduction (the paper does not say; 256 here).
- `part_descriptor`: "reduced" (the part feature after the 1x1 conv, S x part_dim dims) |
  "pooled" (the stripe-pooled map before it, S x C5 dims).
- `dropout`: rate of the dropout before each identity FC (the paper does not give it).
- `mu`, `nu`, `attribute_weight`: the weights of Eq. 3.

Batches: `image` `[B, H, W, 3]`, `label` int32 `[B]`, `attributes` int32 `[B, K]` (-1 for an
unknown value, left out of that attribute's loss and accuracy; only with attribute heads).
"""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxret.backbones import get_backbone
from jaxret.methods import Method, flax_model
from jaxret.methods.a3m import attribute_cross_entropy, value_mask
from jaxret.ops.horizontal_pooling import horizontal_average_pool, horizontal_max_pool
from jaxret.ops.unit_vectors import l2_normalize
from jaxret.user_errors import InputError

ATTRIBUTE_LAYERS = ("res3", "res4", "res5", "none")
BRANCHES = ("both", "global", "part")
DESCRIPTORS = ("fused", "global", "part")
PART_DESCRIPTORS = ("reduced", "pooled")
PART_INITS = ("copy", "random")
_INVALID_LOGIT = -1e9  # logit of a padded attribute value: softmax probability 0


def routing_matrix(attribute_parts, num_parts: int) -> np.ndarray:
  """Table 1 as data: bool `[K, P]`, True where attribute k is predicted from part p."""
  routing = np.zeros((len(attribute_parts), num_parts), bool)
  for k, (_, parts) in enumerate(attribute_parts):
    routing[k, list(parts)] = True
  return routing


def routed_attribute_logits(parts: jax.Array, kernel: jax.Array, bias: jax.Array, routing: jax.Array) -> jax.Array:
  """Sec. 2.1 and Table 1: attribute k's FC (Eq. 1's `z = W^T x + b`) over the concatenation of
  its parts, as one einsum whose kernel is zero on the parts k is not assigned to.
  parts `[B, P, C]`, kernel `[K, P, C, V]`, bias `[K, V]`, routing bool `[K, P]` -> `[B, K, V]`."""
  kernel = kernel * routing[:, :, None, None].astype(kernel.dtype)
  return jnp.einsum("bpc,kpcv->bkv", parts, kernel) + bias


def fused_descriptor(global_feature: jax.Array, part_feature: jax.Array) -> jax.Array:
  """Sec. 3.3: L2-normalised global `[B, Dg]` and part `[B, Dp]` features concatenated -> `[B, Dg + Dp]`."""
  return jnp.concatenate([l2_normalize(global_feature), l2_normalize(part_feature)], axis=-1)


def identity_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Eqs. 1-2: `-(1/k) sum_i log softmax(z_i)[y_i]`: logits `[B, n]`, labels int32 `[B]` -> scalar."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def total_loss(loss_global: jax.Array | None, loss_local: jax.Array | None, attribute_losses: jax.Array | None,
               mu: float, nu: float, attribute_weight: float) -> jax.Array:
  """Eq. 3: `mu L_global + nu L_local + sum_k attribute_weight L_att_k`; an absent term (None:
  branch not trained, no attribute heads) is left out. `attribute_losses` `[K]`."""
  loss = jnp.zeros((), jnp.float32)
  if loss_global is not None:
    loss = loss + mu * loss_global
  if loss_local is not None:
    loss = loss + nu * loss_local
  if attribute_losses is not None:
    loss = loss + attribute_weight * jnp.sum(attribute_losses)
  return loss


class PartAttributeClassifiers(nn.Module):
  """The m attribute FCs over routed parts (`routed_attribute_logits`): parts `[B, P, C]` ->
  logits `[B, K, max_values]`, the values an attribute does not have set to -1e9."""
  attribute_sizes: tuple[int, ...]
  routing: tuple[tuple[bool, ...], ...]  # [K, P]
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, parts: jax.Array) -> jax.Array:
    k, width = len(self.attribute_sizes), max(self.attribute_sizes)
    init = nn.initializers.lecun_normal(in_axis=(1, 2), out_axis=3, batch_axis=0)
    kernel = self.param("kernel", init, (k, parts.shape[1], parts.shape[2], width))
    bias = self.param("bias", nn.initializers.zeros, (k, width))
    logits = routed_attribute_logits(parts.astype(self.dtype), kernel.astype(self.dtype), bias.astype(self.dtype),
                                     jnp.asarray(self.routing))
    return jnp.where(value_mask(self.attribute_sizes)[None], logits.astype(jnp.float32), _INVALID_LOGIT)


class Model(nn.Module):
  """The network of Fig. 2 (see the module docstring)."""
  backbone: str
  backbone_width: float
  num_classes: int
  attribute_sizes: tuple[int, ...]  # () without attribute heads
  routing: tuple[tuple[bool, ...], ...]  # [K, P]; () without attribute heads
  num_parts: int = 4
  attribute_layer: str = "res3"
  branches: str = "both"
  descriptor: str = "fused"
  part_stripes: int = 0
  part_dim: int = 256
  part_descriptor: str = "reduced"
  dropout: float = 0.5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> dict:
    """images `[B, H, W, 3]` -> float32 {"embedding": the test descriptor `[B, D]`; with the global
    branch "global_feature" (pool5) `[B, C5]`, "global_logits" `[B, n]`; with the part branch
    "part_feature" `[B, S * part_dim]` (or `[B, S * C5]` when pooled), "part_logits" `[B, n]`; with
    attribute heads "attribute_parts" `[B, P, C]`, "attribute_logits" `[B, K, max_values]`}."""
    chex.assert_rank(images, 4)
    backbone = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype, name="backbone")
    stages = backbone(images, train=train)
    outputs = {}
    if self.branches in ("both", "global"):
      pool5 = jnp.mean(stages["res5"], axis=(1, 2))
      dropped = nn.Dropout(self.dropout, deterministic=not train)(pool5)
      outputs["global_feature"] = pool5
      outputs["global_logits"] = nn.Dense(self.num_classes, dtype=self.dtype, name="global_classifier")(dropped)
    if self.branches in ("both", "part"):
      # conv5 duplicated: the backbone's last stage with weights of its own, named as the backbone's
      # (ResNet `layer4_*`, MobileNetV2 `features_14..18`), so the pretrained stage can be copied in.
      part_stage = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype,
                                name="part_stage")
      res5_part = part_stage(stages["res4"], train=train, start="res5")["res5"]
      pooled = horizontal_average_pool(res5_part, self.part_stripes or res5_part.shape[1])  # pool5_1 [B, S, C5]
      reduced = nn.Dense(self.part_dim, dtype=self.dtype, name="part_reduction")(pooled)  # 1x1 conv [B, S, d]
      reduced = reduced.reshape(reduced.shape[0], -1)
      dropped = nn.Dropout(self.dropout, deterministic=not train)(reduced)
      outputs["part_feature"] = reduced if self.part_descriptor == "reduced" else pooled.reshape(pooled.shape[0], -1)
      outputs["part_logits"] = nn.Dense(self.num_classes, dtype=self.dtype, name="part_classifier")(dropped)
    if self.attribute_layer != "none":
      parts = horizontal_max_pool(stages[self.attribute_layer], self.num_parts)
      outputs["attribute_parts"] = parts
      outputs["attribute_logits"] = PartAttributeClassifiers(self.attribute_sizes, self.routing, self.dtype,
                                                             name="attribute_classifiers")(parts)
    if self.descriptor == "fused":
      outputs["embedding"] = fused_descriptor(outputs["global_feature"], outputs["part_feature"])
    else:
      outputs["embedding"] = l2_normalize(outputs[f"{self.descriptor}_feature"])
    return {k: x.astype(jnp.float32) for k, x in outputs.items()}


def make_model(config: ml_collections.ConfigDict) -> Model:
  """The Model of `config`; raises a ValueError naming the config key at fault."""
  m = config.midattr
  for key, allowed in (("attribute_layer", ATTRIBUTE_LAYERS), ("branches", BRANCHES), ("descriptor", DESCRIPTORS),
                       ("part_descriptor", PART_DESCRIPTORS), ("part_init", PART_INITS)):
    if m[key] not in allowed:
      raise InputError(f"config.midattr.{key}={m[key]!r}: expected one of {allowed}")
  if m.descriptor != "fused" and m.branches not in ("both", m.descriptor):
    raise InputError(f"config.midattr.descriptor={m.descriptor!r} needs the {m.descriptor} branch, but "
                     f"config.midattr.branches={m.branches!r}: expected branches 'both' or {m.descriptor!r}")
  if m.descriptor == "fused" and m.branches != "both":
    raise InputError(f"config.midattr.descriptor='fused' needs both branches, but config.midattr.branches="
                     f"{m.branches!r}: expected descriptor={m.branches!r}")
  for key in ("part_stripes", "num_parts"):
    if m[key] < (0 if key == "part_stripes" else 1):
      raise InputError(f"config.midattr.{key}={m[key]}: expected a positive integer"
                       + (" (or 0: one stripe per row)" if key == "part_stripes" else ""))
  if m.part_dim < 1 or not 0.0 <= m.dropout < 1.0:
    raise InputError(f"config.midattr.part_dim={m.part_dim}, dropout={m.dropout}: expected part_dim >= 1 and "
                     "0 <= dropout < 1")
  sizes, routing = (), ()
  if m.attribute_layer != "none":
    sizes = tuple(config.attribute_sizes)
    if not sizes:
      raise InputError(f"config.midattr.attribute_layer={m.attribute_layer!r} but dataset {config.dataset!r} has "
                       "no attributes (config.attribute_sizes is empty): expected attribute_layer='none'")
    if len(m.attribute_parts) != len(sizes):
      raise InputError(f"config.midattr.attribute_parts names {len(m.attribute_parts)} attributes; dataset "
                       f"{config.dataset!r} has {len(sizes)}: expected one (name, parts) pair per attribute")
    for name, parts in m.attribute_parts:
      if not parts or any(not 0 <= p < m.num_parts for p in parts):
        raise InputError(f"config.midattr.attribute_parts: attribute {name!r} has parts {tuple(parts)}: expected "
                         f"a non-empty subset of 0..{m.num_parts - 1} (config.midattr.num_parts={m.num_parts})")
    routing = tuple(map(tuple, routing_matrix(m.attribute_parts, m.num_parts).tolist()))
  return Model(backbone=config.backbone, backbone_width=config.backbone_width, num_classes=config.num_classes,
               attribute_sizes=sizes, routing=routing, num_parts=m.num_parts, attribute_layer=m.attribute_layer,
               branches=m.branches, descriptor=m.descriptor, part_stripes=m.part_stripes, part_dim=m.part_dim,
               part_descriptor=m.part_descriptor, dropout=m.dropout, dtype=jnp.dtype(config.compute_dtype))


def copy_last_stage(params, method_state):
  """Sec. 2.1, "we duplicate conv5": `(params, method_state)` with the part branch's stage
  (`part_stage`, parameters and batch statistics) set to the backbone's last stage."""

  def last_stage(tree):
    return {name: tree["backbone"][name] for name in tree["part_stage"]}

  stats = method_state["batch_stats"]
  return ({**params, "part_stage": last_stage(params)},
          {**method_state, "batch_stats": {**stats, "part_stage": last_stage(stats)}})


def init_state(rng: jax.Array, config: ml_collections.ConfigDict, sample_batch: dict):
  params, method_state = flax_model.init_state(make_model)(rng, config, sample_batch)
  if config.midattr.part_init == "copy" and "part_stage" in params:
    params, method_state = copy_last_stage(params, method_state)
  return params, method_state


def after_pretrained_backbone(params, method_state, config: ml_collections.ConfigDict):
  """With `part_init = "copy"`, the part branch starts from the pretrained last stage too."""
  if config.midattr.part_init == "copy" and "part_stage" in params:
    return copy_last_stage(params, method_state)
  return params, method_state


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """Eq. 3 on a batch {"image", "label" `[B]`, "attributes" `[B, K]` (with attribute heads only)};
  `rng` drives the dropout."""
  m = config.midattr
  outputs, updates = make_model(config).apply({"params": params, **method_state}, batch["image"], train=True,
                                              mutable=["batch_stats"], rngs={"dropout": rng})
  labels = batch["label"]
  metrics, loss_global, loss_local, attribute_losses = {}, None, None, None
  if "global_logits" in outputs:
    loss_global = identity_cross_entropy(outputs["global_logits"], labels)
    metrics.update(loss_global=loss_global, accuracy=jnp.mean(jnp.argmax(outputs["global_logits"], -1) == labels))
  if "part_logits" in outputs:
    loss_local = identity_cross_entropy(outputs["part_logits"], labels)
    metrics.update(loss_local=loss_local, part_accuracy=jnp.mean(jnp.argmax(outputs["part_logits"], -1) == labels))
  if "attribute_logits" in outputs:
    attributes = batch["attributes"]
    chex.assert_shape(attributes, outputs["attribute_logits"].shape[:2])
    attribute_losses = attribute_cross_entropy(outputs["attribute_logits"], attributes)
    known = attributes >= 0
    correct = (jnp.argmax(outputs["attribute_logits"], -1) == attributes) & known
    metrics.update(loss_attribute=jnp.sum(attribute_losses),
                   attribute_accuracy=jnp.sum(correct) / jnp.maximum(jnp.sum(known), 1))
  loss = total_loss(loss_global, loss_local, attribute_losses, m.mu, m.nu, m.attribute_weight)
  return loss, (metrics, {**method_state, **updates})


embed_fn = flax_model.eval_output(make_model, "embedding")  # the test descriptor [B, D] (midattr.descriptor)
attribute_fn = flax_model.predicted_attributes(make_model)  # [B, K], with attribute heads
METHOD = Method("midattr", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn, attribute_fn=attribute_fn,
                predicts_attributes=lambda config: config.midattr.attribute_layer != "none",
                after_pretrained_backbone=after_pretrained_backbone, make_model=make_model)
