"""A3M: Attribute-Aware Attention Model (Han et al., ACM MM 2018; papers/a3m.txt).

Heads on the backbone's `res5` map `F` `[B, H, W, C]`, L = H*W regions, K attributes:
- category branch: 1x1 conv to d -> `V` `[B, L, d]`; GAP -> `v_cat` `[B, d]`; FC + CE (Eqs. 1-2);
- K attribute branches as one einsum: 1x1 conv to d + average pooling -> `A` `[B, K, d]`; one FC
  per attribute over its values (a padded `[K, d, max_values]` kernel, invalid values masked) + CE
  (Eqs. 3-4);
- attribute-guided attention `m_k = sigmoid(V^T a_k)` (Eq. 5), `m_region = max_k m_k`,
  `f_region = (1/L) V m_region` (Eq. 6);
- category-guided attention `s_attr = sigmoid(A^T v_cat)` (Eq. 7), `f_attr = (1/K) A s_attr` (Eq. 8);
- `f_final = f_region + f_attr`; FC + CE (`L_add`, Eqs. 9-10);
- `L = L_add + alpha L_category + beta (1/K) sum_k L^(k)` (Eq. 11).

The paper's branches are a 1x1 conv (then average pooling for the attribute branches). With
`a3m.branch = "linear"` (default) that is all: conv and pooling are both linear, so an attribute
branch is computed as the projection of the pooled map (`GAP(F) W_k + b_k`), the same numbers at
1/L of the cost. `a3m.branch = "batchnorm_relu"` is the public Keras code's `init_classification`:
BatchNorm + ReLU after each conv (before pooling, which lets each attribute branch weigh regions)
and again after the pooling, on `v_cat` and on each `a_k`.

Config (`config.a3m`):
- `feature_dim` d (512 in the paper); `embedding_dim` (base key): > 0 adds an FC from `f_final`
  to that size (the paper's 128 / 384 for retrieval), and `L_add`'s classifier reads it; 0 makes
  `f_final` itself the embedding.
- `use_attribute_labels`: False is the paper's "A3M w/o attr-label": the attribute CE terms are
  dropped and the K = `num_latent_attributes` branches (0: as many as the dataset has
  attributes) are latent, learnt only through the attentions.
- `variant`: "a3m"; "baseline2" (both attention weights equal); "att1" (category-guided weights
  equal); "att2" (attribute-guided weights equal). Equal weights are the constant 1
  (`EQUAL_WEIGHT`): the paper says Att-1 fuses the attribute features "via averaging" and Att-2
  fuses the regional features "by average pooling", which Eqs. 6 and 8 give exactly with weight
  1 (f_region = GAP(V) = v_cat, f_attr = mean_k a_k); the public Keras code's `region_equal` /
  `attr_equal` switches use the same two features. (sigmoid(0) = 0.5 would halve both.)
- `attention_norm`: how the logits of Eqs. 5 and 7 are conditioned. "none" is the paper as
  written: sigmoid of the raw dot products, max over attributes. Their spread grows with sqrt(d):
  at initialisation of the synthetic config (d = 128, 32 images, train-mode BatchNorm) `V^T a_k`
  has a standard deviation of ~14, `m_region` is > 0.99 at every region (mean 0.9997, so Eq. 6 is
  a plain average and A3M is Baseline-2) and half of the gates `s_attr` are < 0.01 or > 0.99
  (`benchmarks/a3m_attention.py`). "scale" divides both logits by sqrt(d), as scaled dot-product
  attention does (m_region mean 0.80, min 0.61; 0.3% of the gates saturated). "batchnorm" is the
  public Keras code: `m_region = sigmoid(BN(mean_k V^T a_k))` over the L regions and
  `s_attr = sigmoid(BN(A^T v_cat))` over the K attributes (per-region / per-attribute batch
  statistics; m_region mean 0.49, min 0.17). The "attention" output holds the K maps the model
  used: under "batchnorm" the region BatchNorm is applied, as the affine map it is, to each
  attribute's scores (`RegionScoreNorm`), so `m_region` is the sigmoid of their mean logit. The
  code's other differences (BN on the fused features, concatenation instead of addition, dropout,
  loss weights 0.2 / 0.5 / 1.0) are not reproduced. configs/a3m.py defaults to "scale": the
  paper's equations at a temperature of sqrt(d), chosen by validation Recall@1 on the synthetic
  config (two seeds, 600 steps: scale 0.985 / 0.993, batchnorm 0.952 / 0.958, none 0.952 / 0.942;
  BENCHMARKS.md "A3M on synthetic creatures").
- `branch`: "linear" | "batchnorm_relu" (above).
- `alpha`, `beta`: the loss weights of Eq. 11 (0.5 and 0.5 in the paper). Eq. 11's `(1/K) sum_k`
  averages over the attributes some example of the batch knows (`mean_attribute_loss`).

Batches: `image` `[B, H, W, 3]`, `label` int32 `[B]`, `attributes` int32 `[B, K]` with -1 for an
unknown value (left out of that attribute's CE and accuracy).
"""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxret.backbones import get_backbone
from jaxret.methods import Method, flax_model
from jaxret.user_errors import InputError

VARIANTS = ("a3m", "baseline2", "att1", "att2")
ATTENTION_NORMS = ("none", "scale", "batchnorm")
BRANCHES = ("linear", "batchnorm_relu")
EQUAL_WEIGHT = 1.0  # the attention weights of the ablations' "equal weights" (see the docstring)
_INVALID_LOGIT = -1e9  # logit of a padded attribute value: softmax probability 0


def region_scores(v: jax.Array, a: jax.Array) -> jax.Array:
  """`V^T a_k`, the logits of Eq. 5: V `[B, L, d]`, A `[B, K, d]` -> `[B, K, L]`."""
  return jnp.einsum("bld,bkd->bkl", v, a)


def scaled_scores(scores: jax.Array, feature_dim: int) -> jax.Array:
  """`scores / sqrt(d)`: the logits of Eqs. 5 and 7 at unit scale (scaled dot-product attention)
  when V and A have entries of unit scale (`attention_norm = "scale"`)."""
  return scores / jnp.sqrt(jnp.float32(feature_dim))


def attribute_guided_attention(scores: jax.Array) -> jax.Array:
  """Eq. 5: `m_k = sigmoid(V^T a_k)`, one weight per region, from the scores `V^T a_k` `[B, K, L]`
  (`region_scores`, conditioned by `attention_norm`) -> `[B, K, L]`."""
  return jax.nn.sigmoid(scores)


def merge_region_attention(m: jax.Array) -> jax.Array:
  """Sec. 3.2 after Eq. 5: `m_region = max_k m_k`: `[B, K, L]` -> `[B, L]`."""
  return jnp.max(m, axis=1)


def region_feature(v: jax.Array, m_region: jax.Array) -> jax.Array:
  """Eq. 6: `f_region = (1/L) V m_region`: V `[B, L, d]`, m_region `[B, L]` -> `[B, d]`."""
  return jnp.einsum("bld,bl->bd", v, m_region) / v.shape[1]


def attribute_scores(a: jax.Array, v_cat: jax.Array) -> jax.Array:
  """`A^T v_cat`, the logits of Eq. 7: A `[B, K, d]`, v_cat `[B, d]` -> `[B, K]`."""
  return jnp.einsum("bkd,bd->bk", a, v_cat)


def category_guided_attention(scores: jax.Array) -> jax.Array:
  """Eq. 7: `s_attr = sigmoid(A^T v_cat)`, one weight per attribute, from the scores `A^T v_cat`
  `[B, K]` (`attribute_scores`, conditioned by `attention_norm`) -> `[B, K]`."""
  return jax.nn.sigmoid(scores)


def attribute_feature(a: jax.Array, s_attr: jax.Array) -> jax.Array:
  """Eq. 8: `f_attr = (1/K) A s_attr`: A `[B, K, d]`, s_attr `[B, K]` -> `[B, d]`."""
  return jnp.einsum("bkd,bk->bd", a, s_attr) / a.shape[1]


def value_mask(attribute_sizes: tuple[int, ...]) -> jax.Array:
  """bool `[K, max_values]`: True where value v exists for attribute k (v < attribute_sizes[k])."""
  sizes = jnp.asarray(attribute_sizes, jnp.int32)
  return jnp.arange(max(attribute_sizes))[None, :] < sizes[:, None]


def attribute_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Eq. 4 per attribute, over the examples whose value is known: logits `[B, K, V]` (padded
  values already masked), labels int32 `[B, K]` (-1 unknown) -> `L^(k)` `[K]` (0 where no
  example of the batch knows attribute k)."""
  known = labels >= 0
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(known, labels, 0))
  return jnp.sum(jnp.where(known, ce, 0.0), axis=0) / jnp.maximum(jnp.sum(known, axis=0), 1)


def mean_attribute_loss(attribute_losses: jax.Array, labels: jax.Array) -> jax.Array:
  """`(1/K) sum_k L^(k)` of Eq. 11 over the K' attributes that some example of the batch knows:
  `attribute_losses` `[K]` (Eq. 4), labels int32 `[B, K]` (-1 unknown) -> scalar (0 if K' = 0).
  An attribute no example knows has no loss to average, and dividing by all K would shrink beta
  by the fraction of unknown attributes."""
  known = jnp.any(labels >= 0, axis=0)
  return jnp.sum(jnp.where(known, attribute_losses, 0.0)) / jnp.maximum(jnp.sum(known), 1)


def total_loss(loss_add: jax.Array, loss_category: jax.Array, loss_attribute: jax.Array | None,
               alpha: float, beta: float) -> jax.Array:
  """Eq. 11: `L_add + alpha L_category + beta (1/K) sum_k L^(k)`; `loss_attribute` the last mean
  (`mean_attribute_loss`), or None without attribute labels ("w/o attr-label": the term is dropped)."""
  loss = loss_add + alpha * loss_category
  if loss_attribute is not None:
    loss = loss + beta * loss_attribute
  return loss


def _batch_norm(train: bool, dtype: jnp.dtype, name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


class RegionScoreNorm(nn.Module):
  """The public Keras code's BatchNorm of the region scores, `m_region = sigmoid(BN(mean_k V^T a_k))`
  (per-region statistics over the batch), as the affine map it is: the statistics are those of
  `mean_k s_k`, and the same map normalises each attribute's scores `s_k`, so the per-attribute
  logits average to the region logits exactly. Scores `[B, K, L]` -> normalised scores `[B, K, L]`.
  Variables as `nn.BatchNorm`'s (batch_stats mean / var, params scale / bias, momentum 0.9)."""
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, scores: jax.Array, *, train: bool) -> jax.Array:
    pooled = jnp.mean(scores, axis=1)  # [B, L]
    regions = pooled.shape[-1]
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (regions,), jnp.float32)
    running_var = self.variable("batch_stats", "var", jnp.ones, (regions,), jnp.float32)
    scale = self.param("scale", nn.initializers.ones, (regions,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (regions,), jnp.float32)
    if train:
      mean, var = jnp.mean(pooled, axis=0), jnp.var(pooled, axis=0)
      if not self.is_initializing():
        running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
        running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
    else:
      mean, var = running_mean.value, running_var.value
    return (scores - mean) * (scale * jax.lax.rsqrt(var + self.epsilon)) + bias


class AttributeBranches(nn.Module):
  """The K attribute branches (1x1 conv to d, average pooling; with `batchnorm_relu` the public
  code's BatchNorm + ReLU after the conv and again after the pooling) as one einsum with a
  `[K, C, d]` kernel: map `[B, H, W, C]` -> A `[B, K, d]`. Linear branches project the pooled map
  (the same numbers as pooling the projected map, at 1/L of the cost)."""
  num_attributes: int
  features: int
  batchnorm_relu: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    init = nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=0)
    kernel = self.param("kernel", init, (self.num_attributes, x.shape[-1], self.features)).astype(self.dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.num_attributes, self.features)).astype(self.dtype)
    if not self.batchnorm_relu:
      return jnp.einsum("bc,kcd->bkd", jnp.mean(x, axis=(1, 2)).astype(self.dtype), kernel) + bias
    b, h, w, _ = x.shape
    y = (jnp.einsum("bhwc,kcd->bhwkd", x.astype(self.dtype), kernel) + bias).reshape(b, h, w, -1)
    y = nn.relu(_batch_norm(train, self.dtype, "norm")(y))
    pooled = nn.relu(_batch_norm(train, self.dtype, "pool_norm")(jnp.mean(y, axis=(1, 2))))
    return pooled.reshape(b, self.num_attributes, self.features)


class AttributeClassifiers(nn.Module):
  """One FC per attribute over that attribute's values (Eq. 3), as one einsum with a padded
  `[K, d, max_values]` kernel: A `[B, K, d]` -> logits `[B, K, max_values]`, the values an
  attribute does not have set to -1e9."""
  attribute_sizes: tuple[int, ...]
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, a: jax.Array) -> jax.Array:
    k, width = len(self.attribute_sizes), max(self.attribute_sizes)
    init = nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=0)
    kernel = self.param("kernel", init, (k, a.shape[-1], width))
    bias = self.param("bias", nn.initializers.zeros, (k, width))
    logits = jnp.einsum("bkd,kdv->bkv", a.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)
    return jnp.where(value_mask(self.attribute_sizes)[None], logits.astype(jnp.float32), _INVALID_LOGIT)


class Model(nn.Module):
  """A3M on a backbone's `res5`. `attribute_sizes` = () means latent attributes (no attribute
  classifiers); `num_attributes` is K either way."""
  backbone: str
  backbone_width: float
  num_classes: int
  num_attributes: int
  attribute_sizes: tuple[int, ...]
  feature_dim: int
  embedding_dim: int
  variant: str = "a3m"
  attention_norm: str = "scale"
  branch: str = "linear"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> dict:
    """images `[B, H, W, 3]` -> float32 {"embedding": `[B, D]`, "logits": `[B, classes]` (L_add),
    "category_logits": `[B, classes]`, "attribute_logits": `[B, K, max_values]` (with attribute
    labels only), "attention": the K maps m_k `[B, K, H', W']` of Eq. 5 with `attention_norm`'s
    logits (also in the ablations), "region_attention": the m_region used `[B, H', W']`,
    "attribute_weights": the s_attr used `[B, K]`, "features": f_final `[B, d]`} (H' x W' the res5 map)."""
    chex.assert_rank(images, 4)
    res5 = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype,
                        name="backbone")(images, train=train)["res5"]
    b, h, w, _ = res5.shape
    v = nn.Conv(self.feature_dim, (1, 1), dtype=self.dtype, name="category_conv")(res5)
    if self.branch == "batchnorm_relu":
      v = nn.relu(_batch_norm(train, self.dtype, "category_norm")(v))
    v = v.reshape(b, h * w, self.feature_dim).astype(jnp.float32)  # V [B, L, d]
    v_cat = jnp.mean(v, axis=1)
    if self.branch == "batchnorm_relu":
      v_cat = nn.relu(_batch_norm(train, jnp.float32, "category_pool_norm")(v_cat))
    category_logits = nn.Dense(self.num_classes, dtype=self.dtype, name="category_classifier")(v_cat)
    a = AttributeBranches(self.num_attributes, self.feature_dim, self.branch == "batchnorm_relu", self.dtype,
                          name="attribute_branches")(res5, train=train).astype(jnp.float32)

    # The logits of Eqs. 5 and 7 under `attention_norm`; m holds the K maps the model uses.
    scores, attribute_logits = region_scores(v, a), attribute_scores(a, v_cat)  # [B, K, L], [B, K]
    if self.attention_norm == "scale":
      scores, attribute_logits = scaled_scores(scores, self.feature_dim), scaled_scores(attribute_logits,
                                                                                       self.feature_dim)
    elif self.attention_norm == "batchnorm":
      scores = RegionScoreNorm(name="region_attention_norm")(scores, train=train)
      attribute_logits = _batch_norm(train, jnp.float32, "attribute_attention_norm")(attribute_logits)
    m = attribute_guided_attention(scores)
    if self.variant in ("baseline2", "att2"):
      m_region = jnp.full((b, h * w), EQUAL_WEIGHT, jnp.float32)
    elif self.attention_norm == "batchnorm":  # sigmoid(BN(mean_k V^T a_k)): the mean of the K logits
      m_region = jax.nn.sigmoid(jnp.mean(scores, axis=1))
    else:
      m_region = merge_region_attention(m)
    if self.variant in ("baseline2", "att1"):
      s_attr = jnp.full((b, self.num_attributes), EQUAL_WEIGHT, jnp.float32)
    else:
      s_attr = category_guided_attention(attribute_logits)
    self.sow("intermediates", "V", v)
    self.sow("intermediates", "A", a)
    f_final = region_feature(v, m_region) + attribute_feature(a, s_attr)

    embedding = f_final
    if self.embedding_dim:
      embedding = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(f_final)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(embedding)
    outputs = {
        "embedding": embedding, "logits": logits, "category_logits": category_logits,
        "attention": m.reshape(b, self.num_attributes, h, w), "region_attention": m_region.reshape(b, h, w),
        "attribute_weights": s_attr, "features": f_final}
    if self.attribute_sizes:
      outputs["attribute_logits"] = AttributeClassifiers(self.attribute_sizes, dtype=self.dtype,
                                                         name="attribute_classifiers")(a)
    return {k: x.astype(jnp.float32) for k, x in outputs.items()}


def num_attributes(config: ml_collections.ConfigDict) -> int:
  """K: the dataset's attributes, or `a3m.num_latent_attributes` (when set) without attribute labels."""
  if not config.a3m.use_attribute_labels and config.a3m.num_latent_attributes:
    return config.a3m.num_latent_attributes
  return len(config.attribute_sizes)


def make_model(config: ml_collections.ConfigDict) -> Model:
  """The Model of `config`; raises a ValueError naming the config key at fault."""
  a3m = config.a3m
  if a3m.variant not in VARIANTS:
    raise InputError(f"config.a3m.variant={a3m.variant!r}: expected one of {VARIANTS}")
  if a3m.attention_norm not in ATTENTION_NORMS:
    raise InputError(f"config.a3m.attention_norm={a3m.attention_norm!r}: expected one of {ATTENTION_NORMS}")
  if a3m.branch not in BRANCHES:
    raise InputError(f"config.a3m.branch={a3m.branch!r}: expected one of {BRANCHES}")
  if a3m.use_attribute_labels and not config.attribute_sizes:
    raise InputError(f"config.a3m.use_attribute_labels=True but dataset {config.dataset!r} has no attributes "
                     "(config.attribute_sizes is empty): set config.a3m.use_attribute_labels=False and "
                     "config.a3m.num_latent_attributes=K")
  if a3m.use_attribute_labels and min(config.attribute_sizes) < 1:
    raise InputError(f"config.attribute_sizes={tuple(config.attribute_sizes)}: expected positive value counts")
  if num_attributes(config) < 1:
    raise InputError("config.a3m.num_latent_attributes=0 and the dataset has no attributes: expected K >= 1 "
                     "latent attributes")
  return Model(backbone=config.backbone, backbone_width=config.backbone_width, num_classes=config.num_classes,
               num_attributes=num_attributes(config),
               attribute_sizes=tuple(config.attribute_sizes) if a3m.use_attribute_labels else (),
               feature_dim=a3m.feature_dim, embedding_dim=config.embedding_dim, variant=a3m.variant,
               attention_norm=a3m.attention_norm, branch=a3m.branch, dtype=jnp.dtype(config.compute_dtype))


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """Eq. 11 on a batch {"image", "label" `[B]`, "attributes" `[B, K]` (needed only with
  `a3m.use_attribute_labels`)}."""
  del rng
  outputs, updates = make_model(config).apply(
      {"params": params, **method_state}, batch["image"], train=True, mutable=["batch_stats"])
  labels = batch["label"]
  chex.assert_shape(labels, outputs["logits"].shape[:1])
  loss_add = optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], labels).mean()
  loss_category = optax.softmax_cross_entropy_with_integer_labels(outputs["category_logits"], labels).mean()
  metrics = {"accuracy": jnp.mean(jnp.argmax(outputs["logits"], -1) == labels),
             "category_accuracy": jnp.mean(jnp.argmax(outputs["category_logits"], -1) == labels),
             "loss_add": loss_add, "loss_category": loss_category}
  loss_attribute = None
  if config.a3m.use_attribute_labels:
    attributes = batch["attributes"]
    chex.assert_shape(attributes, outputs["attribute_logits"].shape[:2])
    loss_attribute = mean_attribute_loss(attribute_cross_entropy(outputs["attribute_logits"], attributes), attributes)
    known = attributes >= 0
    correct = (jnp.argmax(outputs["attribute_logits"], -1) == attributes) & known
    metrics["loss_attribute"] = loss_attribute
    metrics["attribute_accuracy"] = jnp.sum(correct) / jnp.maximum(jnp.sum(known), 1)
  loss = total_loss(loss_add, loss_category, loss_attribute, config.a3m.alpha, config.a3m.beta)
  return loss, (metrics, {**method_state, **updates})


init_state = flax_model.init_state(make_model)
embed_fn = flax_model.eval_output(make_model, "embedding")  # [B, D]
classify_fn = flax_model.eval_output(make_model, "logits")  # [B, num_classes]: L_add's classifier (Eqs. 9-10)
attribute_fn = flax_model.predicted_attributes(make_model)  # [B, K]; latent attributes have no values
METHOD = Method("a3m", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn, classify_fn=classify_fn,
                attribute_fn=attribute_fn, predicts_attributes=lambda config: config.a3m.use_attribute_labels,
                make_model=make_model)
