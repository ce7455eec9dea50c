"""A2-Net: attribute-aware hash codes (Wei et al., NeurIPS 2021; papers/a2net.txt).

Network on the backbone's `res5` map `T` `[B, H, W, C_T]` (Eq. 1), k bits:
- attention guidance (Eq. 2): `A = sigmoid(conv1x1(T))` `[B, H, W, C]`, one map per bit
  (C = k, "the number of attention guidance equals the number of hash bits"), `T^c = A^c (.) T`;
- transform networks (Eqs. 3-4): `phi_local` (shared over the C maps) and `phi_global`, each a
  1x1 conv to D channels then `transform_depth - 1` 3x3 convs, ReLU after each; GAP gives
  `x^c` `[B, C, D]` and `x_global` `[B, D]`; `x = [x^1; ..; x^C; x_global]` `[B, (C + 1) D]`;
- tied encoder / decoder: `V' = tanh(W x)` with `W` `[k, d]` (Eq. 6), reconstruction `W^T V'`;
  codes `u = sign(V')` (Eq. 5, Eq. 14 for unseen images: `embed_fn` returns V').
The paper does not say how the maps A^c are computed; a 1x1 conv + sigmoid is the simplest map
"evaluating which deep descriptors should be attended". phi_local's first layer is a 1x1 conv, so
`conv1x1(A^c (.) T) = A^c (.) (T K) + b` exactly (A^c is one scalar per position): T is projected
once, then the C maps are formed at D channels (no Python loop over maps).

Loss (Eq. 13, `jaxret.losses.hashing`), on a batch of n queries against all m database codes Z:
  `||X - W^T V'||^2 + lambda ||W X - V'||^2 + alpha ||V' V'^T - n I||^2
   + beta [sum_i sum_j (v'_i^T z_j - k S_ij)^2 + gamma sum_i ||z_i - v'_i||^2]`
with lambda = 1, alpha = 1 / (n k), beta = 12 / k. The quantisation term is ADSH's (the paper
trains "following [17]", ADSH; gamma = 200 there and in configs/a2net.py); gamma = 0 gives
Eq. 13 as printed. beta multiplies it as in SEMICON's public code (the same group's; `ADSH_Loss`
scales both terms by 12 / k), so the terms with Z are beta times the objective the Z update
minimises: one objective for both steps.
Normalisation per batch: Eq. 7 and Eq. 8 are the plain sums over the batch's n images that the
paper writes (Frobenius norms of `[d, n]` and `[k, k]` matrices), the pair term sums over the
n x m (query, database) pairs, and the whole sum is divided by n m, as ADSH's public code divides
its loss by (database size x batch): a constant factor, so the terms keep Eq. 13's relative
weights and Eq. 7 / 8 weigh 1 / m of a per-pair average. Measured at initialisation (synthetic
config, 32 bits, batch 32, m = 3,000, all database labels known, Z random; `python
benchmarks/a2net_decorrelation.py --gradient_ratio`, before the encoder-init fix): the
gradient's global norm is 0.031 times the pair term's for Eq. 7 and 0.00034 times for Eq. 8
(the quantisation term: 0.12).
S of a dissimilar pair (`config.a2net.similarity`): "balanced" (default) `-r`, r = similar /
dissimilar pairs, as both reference codes (ADSH's and SEMICON's) turn the paper's -1 into; or
"paper" (-1). With many classes the -1 objective has a degenerate minimum: one code c for every
image and Z = -c fits all dissimilar pairs (a fraction 1 - 1/classes of them); trained from
scratch on the synthetic set (200 classes) every run reached it at the first code update
(BENCHMARKS.md). `-r` weighs both kinds of pair the same in total and removes that minimum.

Asymmetric training (ADSH, the paper's [17]): `method_state["database"]` holds, per training
image j (the batch's "index" field), its code `z_j` (`a2net.database_init`: uniform random in
{-1, +1}, or 0 until first assigned as in ADSH's public code), its
label (-1 until the training stream first shows it), the latest output `tanh(W x_j)` and whether
it was seen since the last code update. An outer iteration (as in ADSH's and SEMICON's code):
the stream (`jaxret.data.pipeline.SubsetEpochs`) draws Omega, `config.data.subset_size` random
training images, and reads it `config.data.subset_epochs` times (ADSH: 3, SEMICON: 30; each
pass reshuffled); `config.state_update_every` = one outer iteration of steps, after which
`update_state` updates Z bit by bit in closed form (`jaxret.ops.asymmetric_codes`, one jitted
function) from the outputs of the last pass, and the next Omega starts. The stream position is
in the checkpoint, Z and Omega's outputs in the train state: a run resumes mid-iteration.

Evaluation (hashing protocol, `database_codes`): the queries' codes are ranked against Z, the
learned codes of the training images, as ADSH and SEMICON score; the score against the database
re-encoded by the network (Eq. 14) is reported beside it as `reencoded/map`, ...

Ablations (the paper's Table 2), by switches in `config.a2net`: "vanilla" (backbone GAP
features, only the asymmetric term: ADSH), "attention" (+ Sec. 3.2 features), "reconstruction"
(+ Eq. 7) and "a2net" (+ Eq. 8 decorrelation).

Interpretability (Sec. 4.5, Figure 4): `images_with_bit_on` lists the images whose code has a
chosen bit on, most confident first.
"""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxret.backbones import get_backbone, matmul_conv
from jaxret.losses import hashing
from jaxret.methods import Method, flax_model
from jaxret.ops import asymmetric_codes
from jaxret.ops.sign_codes import sign_codes
from jaxret.user_errors import InputError

VARIANTS = {  # config.a2net.variant -> (attention features, Eq. 7 term, Eq. 8 term): Table 2's rows
    "vanilla": (False, False, False), "attention": (True, False, False),
    "reconstruction": (True, True, False), "a2net": (True, True, True)}
DATABASE_INITS = ("random", "zeros")
SIMILARITIES = ("paper", "balanced")  # S of a dissimilar pair: -1, or ADSH's public code's -r


def attention_guidance(t: jax.Array, logits_kernel: jax.Array, logits_bias: jax.Array) -> jax.Array:
  """Eq. 2's maps `A^c = sigmoid(conv1x1(T))`: T `[B, H, W, C_T]`, kernel `[C_T, C]`, bias `[C]`
  -> `[B, H, W, C]`."""
  return jax.nn.sigmoid(jnp.einsum("bhwt,tc->bhwc", t, logits_kernel) + logits_bias)


def attended_projection(projected: jax.Array, attention: jax.Array, bias: jax.Array) -> jax.Array:
  """Eq. 2 then the first (1x1) layer of phi_local (Eq. 3): `conv1x1(A^c (.) T) = A^c (.) (T K) + b`.
  projected `T K` `[B, H, W, D]`, attention `[B, H, W, C]`, bias `[D]` -> `[B, C, H, W, D]`."""
  return jnp.einsum("bhwd,bhwc->bchwd", projected, attention) + bias


def holistic_feature(local: jax.Array, global_: jax.Array) -> jax.Array:
  """`x = [x^1; ..; x^C; x_global]` (Sec. 3.2): local `[B, C, D]`, global `[B, D]` -> `[B, (C + 1) D]`."""
  return jnp.concatenate([local.reshape(local.shape[0], -1), global_], axis=-1)


def relaxed_codes(x: jax.Array, w: jax.Array) -> jax.Array:
  """Eqs. 5 / 14 before the sign: `V' = tanh(W x)`: x `[B, d]`, w `[k, d]` -> `[B, k]`."""
  return jnp.tanh(x @ w.T)


def binary_codes(relaxed: jax.Array) -> jax.Array:
  """Eq. 5 / 14: `u = sgn(V')` in {-1, +1} (0 -> +1, as the hashing evaluator does), int8."""
  return sign_codes(relaxed)


class TransformNet(nn.Module):
  """phi (Eqs. 3-4): a 1x1 conv to `features`, then `depth - 1` 3x3 convs, ReLU after each.
  With `attention` `[B, H, W, C]` it is phi_local on every `A^c (.) T` (`[B, C, H', W', D]` out),
  else phi_global on T (`[B, H', W', D]`)."""
  features: int
  depth: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, t: jax.Array, attention: jax.Array | None = None) -> jax.Array:
    kernel = self.param("project_kernel", nn.initializers.lecun_normal(), (t.shape[-1], self.features))
    bias = self.param("project_bias", nn.initializers.zeros, (self.features,))
    projected = jnp.einsum("bhwt,td->bhwd", t.astype(self.dtype), kernel.astype(self.dtype))
    if attention is None:
      y = projected + bias.astype(self.dtype)
    else:
      y = attended_projection(projected, attention.astype(self.dtype), bias.astype(self.dtype))
    batch_shape = y.shape[:-3]
    y = nn.relu(y.reshape(-1, *y.shape[-3:]))  # the C maps of every image as one batch
    for i in range(self.depth - 1):  # layers, not parts: a fixed stack
      y = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype, name=f"conv{i + 1}",
                          conv_general_dilated=matmul_conv.conv_general_dilated)(y))
    return y.reshape(*batch_shape, *y.shape[-3:])


class Model(nn.Module):
  """A2-Net's network: images -> holistic feature x and relaxed codes V' = tanh(W x)."""
  backbone: str
  backbone_width: float
  bits: int
  num_attention: int
  transform_dim: int
  transform_depth: int
  attention: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> dict:
    """images `[B, H, W, 3]` -> float32 {"code": V' `[B, k]` (relaxed, in (-1, 1)), "embedding":
    the same (its sign is the hash code), "features": x `[B, d]`, "reconstruction": W^T V'
    `[B, d]`, "attention": A `[B, C, H', W']` (with attention)}."""
    chex.assert_rank(images, 4)
    t = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype,
                     name="backbone")(images, train=train)["res5"]
    outputs = {}
    if self.attention:
      a_kernel = self.param("attention_kernel", nn.initializers.lecun_normal(), (t.shape[-1], self.num_attention))
      a_bias = self.param("attention_bias", nn.initializers.zeros, (self.num_attention,))
      attention = attention_guidance(t.astype(jnp.float32), a_kernel, a_bias)
      local = TransformNet(self.transform_dim, self.transform_depth, self.dtype, name="transform_local")(t, attention)
      global_ = TransformNet(self.transform_dim, self.transform_depth, self.dtype, name="transform_global")(t)
      x = holistic_feature(jnp.mean(local, axis=(2, 3)), jnp.mean(global_, axis=(1, 2)))
      outputs["attention"] = jnp.moveaxis(attention, -1, 1)
    else:  # Table 2's vanilla backbone: GAP of T
      x = jnp.mean(t, axis=(1, 2))
    x = x.astype(jnp.float32)
    # W is [k, d] (the paper's orientation): its fan-in is the last axis, d
    w = self.param("encoder", nn.initializers.lecun_normal(in_axis=-1, out_axis=-2), (self.bits, x.shape[-1]))
    code = relaxed_codes(x, w)
    outputs.update(code=code, embedding=code, features=x, reconstruction=code @ w)
    return {k: v.astype(jnp.float32) for k, v in outputs.items()}


def _check(config: ml_collections.ConfigDict) -> None:
  c = config.a2net
  if c.variant not in VARIANTS:
    raise InputError(f"config.a2net.variant={c.variant!r}: expected one of {tuple(VARIANTS)}")
  for key in ("bits", "transform_dim", "transform_depth"):
    if c[key] < 1:
      raise InputError(f"config.a2net.{key}={c[key]}: expected a positive integer")
  if c.num_attention < 0:
    raise InputError(f"config.a2net.num_attention={c.num_attention}: expected 0 (= bits) or a positive integer")
  if c.database_init not in DATABASE_INITS:
    raise InputError(f"config.a2net.database_init={c.database_init!r}: expected one of {DATABASE_INITS}")
  if c.similarity not in SIMILARITIES:
    raise InputError(f"config.a2net.similarity={c.similarity!r}: expected one of {SIMILARITIES}")
  for key in ("lam", "alpha_times_nk", "beta_times_k", "gamma"):
    if c[key] < 0:
      raise InputError(f"config.a2net.{key}={c[key]}: expected a weight >= 0")


def make_model(config: ml_collections.ConfigDict) -> Model:
  """The Model of `config`; raises a ValueError naming the config key at fault."""
  _check(config)
  c = config.a2net
  return Model(backbone=config.backbone, backbone_width=config.backbone_width, bits=c.bits,
               num_attention=c.num_attention or c.bits, transform_dim=c.transform_dim,
               transform_depth=c.transform_depth, attention=VARIANTS[c.variant][0],
               dtype=jnp.dtype(config.compute_dtype))


def init_database(num_images: int, bits: int, rng: jax.Array | None = None) -> dict:
  """The asymmetric-training state for m = `num_images` training images (module docstring): codes
  Z all 0 (ADSH's public code), or uniformly random in {-1, +1} given `rng`."""
  codes = jnp.zeros((num_images, bits), jnp.float32)
  if rng is not None:
    codes = jnp.where(jax.random.bernoulli(rng, 0.5, codes.shape), 1.0, -1.0)
  return {"codes": codes, "labels": jnp.full((num_images,), -1, jnp.int32),
          "outputs": jnp.zeros((num_images, bits), jnp.float32),
          "in_query": jnp.zeros((num_images,), bool)}


def init_state(rng: jax.Array, config: ml_collections.ConfigDict, sample_batch: dict):
  """(params, {"batch_stats", "database"}); needs `config.num_train_examples` (set by the loop)."""
  if config.num_train_examples < 1:
    raise InputError(f"config.num_train_examples={config.num_train_examples}: A2-Net keeps a code per "
                     "training image and needs the training-set size (the train loop sets it)")
  model_rng, codes_rng = jax.random.split(rng)
  params, method_state = flax_model.init_state(make_model)(model_rng, config, sample_batch)
  random_codes = config.a2net.database_init == "random"
  database = init_database(config.num_train_examples, config.a2net.bits, codes_rng if random_codes else None)
  return params, {**method_state, "database": database}


def loss_weights(config: ml_collections.ConfigDict, batch_size: int) -> tuple[float, float, float]:
  """(lambda, alpha, beta) of Eq. 13: `lam`, `alpha_times_nk / (n k)` and `beta_times_k / k`
  (alpha 0 when `variant` leaves out the decorrelation term)."""
  c = config.a2net
  alpha = c.alpha_times_nk / (batch_size * c.bits) if VARIANTS[c.variant][2] else 0.0
  return c.lam, alpha, c.beta_times_k / c.bits


def dissimilar_pair_similarity(config: ml_collections.ConfigDict, labels: jax.Array, database_labels: jax.Array,
                               query_mask: jax.Array | None = None) -> jax.Array | float:
  """`S_ij` of a dissimilar pair by `config.a2net.similarity`: "paper" -1 (Eq. 11); "balanced"
  `-r` over these queries and database rows (`jaxret.losses.hashing.balanced_dissimilarity`)."""
  if config.a2net.similarity == "paper":
    return -1.0
  return hashing.balanced_dissimilarity(labels, database_labels, config.num_classes, query_mask)


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """Eq. 13 (module docstring) on a batch {"image", "label" `[B]`, "index" `[B]` (position in the
  training set)}; records the batch's labels and outputs in the database state."""
  del rng
  outputs, updates = make_model(config).apply(
      {"params": params, **method_state}, batch["image"], train=True, mutable=["batch_stats"])
  db = method_state["database"]
  index, labels = batch["index"], batch["label"]
  x, codes = outputs["features"], outputs["code"]
  chex.assert_shape([index, labels], codes.shape[:1])
  n, m = codes.shape[0], db["codes"].shape[0]
  lam, alpha, beta = loss_weights(config, n)
  w = params["encoder"]
  db_labels = db["labels"].at[index].set(labels)
  reconstruction = jnp.zeros(())
  if VARIANTS[config.a2net.variant][1]:
    reconstruction = hashing.attribute_guided_reconstruction(x, w, codes, lam)
  decorrelation = hashing.decorrelation_error(codes)
  dissimilar = dissimilar_pair_similarity(config, labels, db_labels)
  asymmetric = hashing.asymmetric_error(codes, labels, db["codes"], db_labels, config.a2net.bits, dissimilar)
  quantization = hashing.quantization_error(codes, db["codes"][index])
  objective = hashing.a2net_objective(reconstruction, decorrelation, asymmetric, alpha, beta, quantization,
                                      config.a2net.gamma)
  loss = objective / (n * m)
  database = {"codes": db["codes"], "labels": db_labels,
              "outputs": db["outputs"].at[index].set(jax.lax.stop_gradient(codes)),
              "in_query": db["in_query"].at[index].set(True)}
  metrics = {"reconstruction": reconstruction / n, "decorrelation": decorrelation / n,
             "asymmetric": asymmetric / (n * m), "quantization": quantization / n,
             "bit_correlation": mean_abs_bit_correlation(codes),
             "database_codes_assigned": jnp.mean(jnp.any(db["codes"] != 0, axis=1))}
  return loss, (metrics, {**method_state, **updates, "database": database})


def update_state(params, method_state, data, config: ml_collections.ConfigDict):
  """End of an outer iteration: Z updated bit by bit in closed form (ADSH's DCC) from the outputs
  of the images seen since the last update (Omega), which then starts afresh."""
  del params, data
  db = method_state["database"]
  dissimilar = dissimilar_pair_similarity(config, db["labels"], db["labels"], db["in_query"])
  codes = asymmetric_codes.update_database_codes(
      db["codes"], db["outputs"], db["in_query"], db["labels"], jnp.float32(config.a2net.bits),
      jnp.float32(config.a2net.gamma), dissimilar, num_classes=config.num_classes)
  database = {**db, "codes": codes, "in_query": jnp.zeros_like(db["in_query"])}
  return {**method_state, "database": database}


def database_codes(params, method_state, config: ml_collections.ConfigDict) -> jax.Array:
  """The learned database codes Z `[m, k]` (row j: training image j; in {-1, +1}, 0 for rows never
  assigned, which the evaluator's sign makes +1): what the hashing protocol ranks the queries
  against, as ADSH's and SEMICON's public code do (`jaxret.eval.evaluator.HashingEvaluator`)."""
  del params, config
  return method_state["database"]["codes"]


# Eq. 14 before the sign: images [B, H, W, 3] -> tanh(W F(I)) [B, k]; the hashing evaluator takes its sign.
embed_fn = flax_model.eval_output(make_model, "code")


def mean_abs_bit_correlation(codes: jax.Array) -> jax.Array:
  """Mean over the k (k - 1) / 2 pairs of bits of `|b_a^T b_b| / N`, the off-diagonal of Eq. 8's
  `V' V'^T / n`: codes `[N, k]` (in {-1, +1}, or relaxed) -> scalar. For +-1 codes this is the
  uncentred correlation of two bits (Pearson's when the bits are balanced); two equal constant
  bits score 1 (a collapsed code is fully correlated, not undefined)."""
  n, k = codes.shape
  gram = codes.T @ codes / n
  return jnp.sum(jnp.abs(jnp.triu(gram, 1))) / max(k * (k - 1) // 2, 1)


def images_with_bit_on(relaxed: np.ndarray, bit: int, limit: int | None = None) -> np.ndarray:
  """Sec. 4.5 / Figure 4: the images whose code has `bit` on (+1), most confident (largest
  `tanh(W x)[bit]`) first: relaxed `[N, k]` (embed_fn's output) -> int64 indices (at most `limit`)."""
  relaxed = np.asarray(relaxed)
  if not 0 <= bit < relaxed.shape[1]:
    raise ValueError(f"bit={bit}: expected 0 <= bit < {relaxed.shape[1]} (the code length)")
  values = relaxed[:, bit]
  on = np.flatnonzero(values >= 0)
  order = on[np.argsort(-values[on], kind="stable")]
  return order if limit is None else order[:limit]


METHOD = Method("a2net", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn, update_state=update_state,
                database_codes=database_codes, make_model=make_model)
