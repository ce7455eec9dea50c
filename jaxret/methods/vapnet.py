"""VAPNet: Visual Attribute Parameterization Network (Wang et al., NeurIPS 2023; papers/vapnet.txt).

- Retrieval module (Sec. 3.1, the only part that runs at test time): backbone -> `F` `[B, h, w, C]`
  -> GAP `g(F)` -> embedding `E_R` (with `embedding_dim` > 0 an FC after the GAP, as
  configs/baseline.py; 0 is the paper's `E_R = g(F)`); a classifier on it gives `L_a` (Eq. 8, CE).
- Attribute exploration (Sec. 3.2): M of the 340 grid patches (`jaxret.ops.local_views`) per image,
  drawn with the step's rng, resized to the input size and passed through the same backbone (the
  same parameters, which receive the gradients of both passes) -> `F_L^i` (Eq. 1);
  `A_L^i = T_L(F_L^i) = W_L g(F_L^i) + b_L` (Eq. 2). The views are a BatchNorm batch of their own
  (`B M` views) with running statistics of their own (`batch_stats/backbone_views`), so the images'
  statistics (`batch_stats/backbone`), the only ones used at test time, are those of whole images.
  The paper does not say; `view_statistics = "shared"` is the one-batch alternative
  (`B (1 + M)` inputs in one call and one set of statistics, two thirds of them magnified patches).
- Attribute sampling (Sec. 3.3): RoIAlign (`jaxret.ops.roi_align`) of `F` at each patch's box
  -> `F_G^i`; `A_G^i = T_G(F_G^i) = W_G g(F_G^i) + b_G` (Eq. 3).
- Mean encoders `E[T_L]`, `E[T_G]`: copies of the encoders' parameters in the method state,
  `E_t = (1 - a) E_{t-1} + a theta_t` (Eq. 7, `ema_update`), initialised to theta. They are not
  parameters: the optimizer never sees them and no gradient flows into them. The loss of step t
  uses `E_{t-1}` (the state it receives) and returns `E_t`, with theta_t the parameters of that
  step's forward pass. Gradients do flow through their inputs `g(F_L^i)`, `g(F_G^i)` into the
  backbone: "since the two mean encoders do not introduce learnable parameters, the attribute
  parameterization constraint could directly penalize the retrieval model" (Sec. 3.3).
- Consistency (Eqs. 5-6, `jaxret.losses.consistency`): KL with a softmax over the k attribute
  dimensions, summed over the M views and averaged over the batch.
- Total (Eq. 9): `L_a + lambda L_c_hat`.

Variants (`config.vapnet.variant`, the rows of Table 1): "full" (`L_a + lambda L_c_hat`);
"aux_only" (`L_a`: no local views, the baseline); "no_mean_encoders" (`L_a + lambda L_c`, Eq. 5:
the targets come from the trained encoders, and gradients reach the encoders through them);
"consistency_only" (`lambda L_c_hat`).

Config (`config.vapnet`): `num_views` M (Table 4), `attribute_dim` k (Table 5), `ema_ratio` a
(Table 6), `weight` lambda (Table 7), `grids` (the n of the n x n patch grids), `roi_size` and
`sampling_ratio` of RoIAlign (the paper does not give them: Mask R-CNN's 7 x 7 bins of 2 x 2
samples), `view_statistics` ("own" | "shared", the views' BatchNorm batch and statistics).
"""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxret.backbones import get_backbone
from jaxret.losses.consistency import attribute_consistency
from jaxret.methods import Method, flax_model
from jaxret.ops.bilinear import crop_and_resize
from jaxret.ops.local_views import grid_patch_boxes, sample_patches
from jaxret.ops.roi_align import roi_align
from jaxret.user_errors import InputError

VARIANTS = ("full", "aux_only", "no_mean_encoders", "consistency_only")
VIEW_STATISTICS = ("own", "shared")


def encode(theta: dict, pooled: jax.Array) -> jax.Array:
  """Eqs. 2-3: `T(F) = W g(F) + b` on pooled features `g(F)` `[..., C]` with theta = {"kernel" `[C, k]`,
  "bias" `[k]`} (an encoder's parameters or its mean encoder's) -> attributes `[..., k]`."""
  return pooled.astype(jnp.float32) @ theta["kernel"] + theta["bias"]


def ema_update(mean_params, params, ratio: float):
  """Eq. 7: `E_t = (1 - a) E_{t-1} + a theta` leaf by leaf; no gradient flows into theta."""
  return jax.tree.map(lambda mean, theta: (1.0 - ratio) * mean + ratio * jax.lax.stop_gradient(theta),
                      mean_params, params)


class Model(nn.Module):
  """The retrieval module; with `views` and their `boxes`, also the attribute exploration and
  sampling of training (the encoders T_L and T_G)."""
  backbone: str
  backbone_width: float
  num_classes: int
  embedding_dim: int
  attribute_dim: int
  roi_size: int = 7
  sampling_ratio: int = 2
  view_statistics: str = "own"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool, views: jax.Array | None = None,
               boxes: jax.Array | None = None) -> dict:
    """images `[B, H, W, 3]` -> {"embedding" `E_R` `[B, D]`, "logits" `[B, classes]`}; with views
    `[B, M, H, W, 3]` and their boxes `[B, M, 4]` (x1, y1, x2, y2 in input pixels) also
    "local_features" `g(F_L^i)` and "roi_features" `g(F_G^i)` `[B, M, C]`, "attributes_local"
    `A_L^i` and "attributes_global" `A_G^i` `[B, M, k]` (float32)."""
    chex.assert_rank(images, 4)
    b = images.shape[0]
    backbone = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype, name="backbone")
    if views is not None:
      chex.assert_rank(views, 5)
      flat_views = views.reshape(-1, *views.shape[2:]).astype(images.dtype)
    if views is not None and self.view_statistics == "shared":  # one BatchNorm batch of B (1 + M) inputs
      res5 = backbone(jnp.concatenate([images, flat_views]), train=train)["res5"]
      feature_map, view_maps = res5[:b], res5[b:]
    else:
      feature_map = backbone(images, train=train)["res5"]  # F
      if views is not None:  # the backbone's parameters, the statistics of "backbone_views"
        shared = backbone.variables["params"]
        run = nn.map_variables(lambda module, x: module(x, train=train)["res5"], "params",
                               trans_in_fn=lambda _: {"params": shared})
        view_maps = run(get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype,
                                     name="backbone_views"), flat_views)
    embedding = jnp.mean(feature_map, axis=(1, 2))  # g(F)
    if self.embedding_dim:
      embedding = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(embedding)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(embedding)
    outputs = {"embedding": embedding, "logits": logits}
    if views is not None:
      m = views.shape[1]
      chex.assert_shape(boxes, (b, m, 4))
      outputs["local_features"] = jnp.mean(view_maps, axis=(1, 2)).reshape(b, m, -1)  # g(F_L^i), Eq. 1
      scale = (feature_map.shape[1] / images.shape[1], feature_map.shape[2] / images.shape[2])
      f_global = roi_align(feature_map, boxes, (self.roi_size, self.roi_size), scale, self.sampling_ratio)
      outputs["roi_features"] = jnp.mean(f_global, axis=(2, 3))  # g(F_G^i)
      outputs["attributes_local"] = nn.Dense(self.attribute_dim, name="encoder_local")(
          outputs["local_features"].astype(jnp.float32))  # Eq. 2
      outputs["attributes_global"] = nn.Dense(self.attribute_dim, name="encoder_global")(
          outputs["roi_features"].astype(jnp.float32))  # Eq. 3
    return {k: x.astype(jnp.float32) for k, x in outputs.items()}


def uses_views(config: ml_collections.ConfigDict) -> bool:
  """Whether the variant has the consistency term (all but "aux_only")."""
  return config.vapnet.variant != "aux_only"


def uses_mean_encoders(config: ml_collections.ConfigDict) -> bool:
  return config.vapnet.variant in ("full", "consistency_only")


def make_model(config: ml_collections.ConfigDict) -> Model:
  """The Model of `config`; raises a ValueError naming the config key at fault."""
  v = config.vapnet
  if v.variant not in VARIANTS:
    raise InputError(f"config.vapnet.variant={v.variant!r}: expected one of {VARIANTS}")
  num_patches = len(grid_patch_boxes(config.image_height or config.image_size, config.image_size, tuple(v.grids)))
  if not 1 <= v.num_views <= num_patches:
    raise InputError(f"config.vapnet.num_views={v.num_views}: expected 1 <= M <= {num_patches} (the grid patches)")
  if v.attribute_dim < 1:
    raise InputError(f"config.vapnet.attribute_dim={v.attribute_dim}: expected k >= 1")
  if not 0.0 <= v.ema_ratio < 1.0:
    raise InputError(f"config.vapnet.ema_ratio={v.ema_ratio}: expected 0 <= a < 1 (Eq. 7)")
  if v.weight < 0:
    raise InputError(f"config.vapnet.weight={v.weight}: expected lambda >= 0")
  if v.view_statistics not in VIEW_STATISTICS:
    raise InputError(f"config.vapnet.view_statistics={v.view_statistics!r}: expected one of {VIEW_STATISTICS}")
  for key in ("roi_size", "sampling_ratio"):
    if v[key] < 1:
      raise InputError(f"config.vapnet.{key}={v[key]}: expected an integer >= 1")
  return Model(backbone=config.backbone, backbone_width=config.backbone_width, num_classes=config.num_classes,
               embedding_dim=config.embedding_dim, attribute_dim=v.attribute_dim, roi_size=v.roi_size,
               sampling_ratio=v.sampling_ratio, view_statistics=v.view_statistics,
               dtype=jnp.dtype(config.compute_dtype))


def local_views(rng: jax.Array, images: jax.Array, config: ml_collections.ConfigDict):
  """Sec. 3.2, input sampling: images `[B, H, W, 3]` -> (views `[B, M, H, W, 3]`, their boxes
  int32 `[B, M, 4]`), M = `config.vapnet.num_views` distinct grid patches per image."""
  b, h, w, _ = images.shape
  candidates = jnp.asarray(grid_patch_boxes(h, w, tuple(config.vapnet.grids)))
  boxes = candidates[sample_patches(rng, b, config.vapnet.num_views, candidates.shape[0])]
  return crop_and_resize(images, boxes, (h, w)), boxes


def init_state(rng: jax.Array, config: ml_collections.ConfigDict, sample_batch: dict):
  """Parameters (backbone, embedding, classifier, encoders) and {"batch_stats" ("backbone" and, with
  views and `view_statistics = "own"`, "backbone_views"), "mean_encoders": {"local": E[T_L], "global":
  E[T_G]}} (the mean encoders only for variants that use them, initialised to the encoders, Eq. 7)."""
  images = jnp.asarray(sample_batch["image"][:1])
  if not uses_views(config):
    return flax_model.init_state(make_model)(rng, config, {"image": images})
  views, boxes = local_views(jax.random.key(0), images, config)
  variables = make_model(config).init(rng, images, train=False, views=views, boxes=boxes)
  params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
  if uses_mean_encoders(config):
    state["mean_encoders"] = {"local": params["encoder_local"], "global": params["encoder_global"]}
  return params, state


def after_pretrained_backbone(params, method_state, config: ml_collections.ConfigDict):
  """The views' statistics ("backbone_views") start from the pretrained backbone's, as the images' do."""
  stats = method_state["batch_stats"]
  if "backbone_views" not in stats:
    return params, method_state
  return params, {**method_state, "batch_stats": {**stats, "backbone_views": stats["backbone"]}}


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """Eq. 9 (or the variant's terms) on a batch {"image" `[B, H, W, 3]`, "label" `[B]`}; `rng` draws
  the local views. Returns (loss, (metrics, new method state with E_t))."""
  v = config.vapnet
  images, labels = batch["image"], batch["label"]
  variables = flax_model.variables(params, method_state)
  kwargs = {}
  if uses_views(config):
    kwargs["views"], kwargs["boxes"] = local_views(rng, images, config)
  outputs, updates = make_model(config).apply(variables, images, train=True, mutable=["batch_stats"], **kwargs)
  chex.assert_shape(labels, outputs["logits"].shape[:1])
  loss_aux = optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], labels).mean()  # Eq. 8
  metrics = {"accuracy": jnp.mean(jnp.argmax(outputs["logits"], -1) == labels), "loss_aux": loss_aux}
  new_state = {**method_state, **updates}
  if not uses_views(config):
    return loss_aux, (metrics, new_state)

  encoders = {"local": params["encoder_local"], "global": params["encoder_global"]}
  teachers = method_state["mean_encoders"] if uses_mean_encoders(config) else encoders
  targets_local = encode(teachers["global"], outputs["local_features"])  # E[T_G](F_L^i) (Eq. 6) or T_G(F_L^i) (Eq. 5)
  targets_global = encode(teachers["local"], outputs["roi_features"])  # E[T_L](F_G^i) or T_L(F_G^i)
  loss_consistency = attribute_consistency(targets_local, outputs["attributes_local"], targets_global,
                                           outputs["attributes_global"])
  metrics["loss_consistency"] = loss_consistency
  loss = v.weight * loss_consistency
  if v.variant != "consistency_only":
    loss = loss_aux + loss  # Eq. 9
  if uses_mean_encoders(config):
    new_state["mean_encoders"] = ema_update(method_state["mean_encoders"], encoders, v.ema_ratio)
  return loss, (metrics, new_state)


# E_R [B, D] (eval mode, the images' statistics): the retrieval module alone, as the baseline.
embed_fn = flax_model.eval_output(make_model, "embedding")
METHOD = Method("vapnet", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn,
                after_pretrained_backbone=after_pretrained_backbone, make_model=make_model)
