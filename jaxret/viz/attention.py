"""Attention maps overlaid on the input images, a row per image, written as PNG grids.

- A3M (`a3m_panels`): the input, `m_region` and the K attribute-guided maps `m_k = sigmoid(V^T a_k)`
  (Eq. 5), upsampled from the res5 grid to the image. They are weights in (0, 1): one colour scale
  for all maps ("jet", 0 blue, 1 red), so attributes can be compared.
- DeML (`deml_panels`): per scale i < I, the random-walk object attention on that scale's input
  with its crop box, then the crop zoomed to the input size (scale i + 1's input). The walk's mass
  has no fixed scale: each map is stretched to [0, 1] first (as `jaxret.ops.crop_zoom` does).
- VAPNet (`vapnet_panels`): the M local views drawn with a key (as in training: distinct grid
  patches), boxed in colour on the image, then each view magnified, framed in its box's colour and
  titled with the cosine of its two attribute vectors A_L and A_G (Eqs. 2-3), the pair the
  consistency loss (Eqs. 5-6) pulls together.

`model_outputs(params, method_state, config, images)` runs a run's model (eval mode, compiled once per
run) on uint8 images `[B, H, W, 3]` of its input size. Each `*_panels(outputs, images, ...)` turns
those outputs into (panels `[B, columns, H, W, 3]` in [0, 1], column titles, panel titles or None);
each `write_*(params, method_state, config, images, path, ...)` does both and writes the PNG with
`jaxret.viz.image_grid.write_grid`, refusing another method's run.
"""
import functools

import flax
import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

from jaxret import methods
from jaxret.data import pipeline
from jaxret.methods import flax_model, vapnet
from jaxret.ops import crop_zoom
from jaxret.viz import image_grid

OPACITY = 0.5  # weight of the attention colour in an overlay
COLOURMAP = "jet"
BOX_COLOURS = np.asarray(matplotlib.colormaps["tab10"].colors, np.float32)  # VAPNet's view i: colour i % 10
CROP_BOX_COLOUR = np.ones((1, 3), np.float32)  # DeML's crop box: white


def check_run(config: ml_collections.ConfigDict, method: str, what: str) -> None:
  """A ValueError naming `config.method` when the run is not one of `method`."""
  if config.method != method:
    raise ValueError(f"{what}: a run of config.method={config.method!r}; expected a {method} run "
                     f"(config.method={method!r})")


def upsample(maps: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear resize of attention maps `[..., h, w]` -> `[..., H, W]` (`size` = (H, W))."""
  return jax.image.resize(maps, (*maps.shape[:-2], *size), "linear")


def stretch(maps: np.ndarray) -> np.ndarray:
  """Each map `[..., H, W]` linearly mapped onto [0, 1] (a constant map -> 0)."""
  low = maps.min(axis=(-2, -1), keepdims=True)
  high = maps.max(axis=(-2, -1), keepdims=True)
  return (maps - low) / np.maximum(high - low, 1e-12)


def overlay(images: np.ndarray, maps: np.ndarray, opacity: float = OPACITY) -> np.ndarray:
  """Attention blended onto images: images `[..., H, W, 3]` in [0, 1], maps `[..., H, W]` in [0, 1]
  (coloured by `COLOURMAP`) -> `(1 - opacity) image + opacity colour` `[..., H, W, 3]`."""
  colours = matplotlib.colormaps[COLOURMAP](np.clip(maps, 0.0, 1.0))[..., :3]
  return (1.0 - opacity) * images + opacity * colours.astype(np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _forward(config: ml_collections.FrozenConfigDict, variables: dict, inputs: jax.Array, extra: dict) -> dict:
  """The model of `config.method` in eval mode; compiled once per (config, shapes): JAX's jit cache
  keys on the frozen config, so repeated figures of one run reuse the program."""
  return methods.get_method(config.method).make_model(config).apply(variables, inputs, train=False, **extra)


def model_outputs(params, method_state, config: ml_collections.ConfigDict, images: np.ndarray, **extra) -> dict:
  """The eval-mode outputs (NumPy) of the run's model on uint8 images `[B, H, W, 3]` of its input
  size; `extra` goes to the model (VAPNet's `views`, `boxes`)."""
  images = image_grid.check_images(images, pipeline.image_shape(config), f"{config.method} model_outputs")
  variables = flax_model.variables(params, method_state)
  try:
    outputs = _forward(ml_collections.FrozenConfigDict(config), variables, image_grid.to_model_input(images), extra)
  except (flax.errors.ScopeParamNotFoundError, flax.errors.ScopeParamShapeError) as e:
    raise ValueError(f"model_outputs: the params do not fit the model of config.method={config.method!r} "
                     f"(are they another run's?): {e}") from None
  return jax.tree.map(np.asarray, outputs)


def _check_outputs(outputs: dict, keys: tuple[str, ...], images: np.ndarray, what: str) -> np.ndarray:
  """`images` (uint8 `[B, H, W, 3]`) once `outputs` has `keys`, each with B rows."""
  images = image_grid.check_images(images, None, what)
  missing = [k for k in keys if k not in outputs]
  if missing:
    raise ValueError(f"{what}: the model's outputs have no {missing} (keys {sorted(outputs)}); expected the "
                     "outputs of that method's model")
  if len(outputs[keys[0]]) != len(images):
    raise ValueError(f"{what}: outputs of {len(outputs[keys[0]])} images for {len(images)} images; expected one each")
  return images


def a3m_panels(outputs: dict, images: np.ndarray, attribute_names: tuple[str, ...] | None = None):
  """A3M's attentions from its model's outputs ("attention" `[B, K, h, w]`, "region_attention"
  `[B, h, w]`) on uint8 images `[B, H, W, 3]` -> (panels `[B, 2 + K, H, W, 3]`: the image, m_region,
  m_1..m_K overlaid; column titles (`attribute_names` for the K maps, else m_1..m_K); None)."""
  images = _check_outputs(outputs, ("attention", "region_attention"), images, "a3m_panels")
  maps = np.concatenate([outputs["region_attention"][:, None], outputs["attention"]], axis=1)  # [B, 1 + K, h, w]
  maps = np.asarray(upsample(jnp.asarray(maps), images.shape[1:3]))
  shown = images.astype(np.float32) / 255.0
  panels = np.concatenate([shown[:, None], overlay(shown[:, None], maps)], axis=1)
  k = outputs["attention"].shape[1]
  names = tuple(attribute_names) if attribute_names is not None and len(attribute_names) == k else tuple(
      f"m_{i + 1}" for i in range(k))
  return panels, ("image", "m_region", *names), None


def deml_panels(outputs: dict, images: np.ndarray):
  """DeML's object attention and crops from its model's outputs ("attention" `[B, I - 1, H, W]`,
  "boxes" `[B, I - 1, 4]`) on uint8 images `[B, H, W, 3]` -> (panels `[B, 1 + 2 (I - 1), H, W, 3]`: the
  image, then per scale i < I its input overlaid with its attention and crop box, and the crop (scale
  i + 1's input); column titles; None)."""
  images = _check_outputs(outputs, ("attention", "boxes"), images, "deml_panels")
  if outputs["attention"].shape[2:] != images.shape[1:3]:
    raise ValueError(f"deml_panels: attention maps of size {outputs['attention'].shape[2:]} for images of size "
                     f"{images.shape[1:3]}; expected the images the model saw")
  attention, boxes = stretch(outputs["attention"]), outputs["boxes"]  # [B, I - 1, H, W], [B, I - 1, 4]
  scale_input = images.astype(np.float32) / 255.0
  columns, titles = [scale_input], ["image"]
  for i in range(attention.shape[1]):  # the scales, each cropped from the previous one
    boxed = image_grid.draw_boxes(overlay(scale_input, attention[:, i]), boxes[:, i, None], CROP_BOX_COLOUR)
    scale_input = np.asarray(crop_zoom.crop_and_zoom(jnp.asarray(scale_input), jnp.asarray(boxes[:, i]),
                                                     images.shape[1:3]))
    columns += [boxed, scale_input]
    titles += [f"scale {i + 1}: attention", f"scale {i + 2}: input"]
  return np.stack(columns, axis=1), tuple(titles), None


def vapnet_panels(outputs: dict, images: np.ndarray, views: np.ndarray, boxes: np.ndarray):
  """VAPNet's local views (`vapnet.local_views`: normalised views `[B, M, H, W, 3]`, boxes `[B, M, 4]`
  as (x1, y1, x2, y2)) and its model's outputs on them ("attributes_local", "attributes_global"
  `[B, M, k]`), uint8 images `[B, H, W, 3]` -> (panels `[B, 1 + M, H, W, 3]`: the image with the M
  boxes, then each view framed in its box's colour; column titles; panel titles with each view's
  cos(A_L, A_G))."""
  images = _check_outputs(outputs, ("attributes_local", "attributes_global"), images, "vapnet_panels")
  if np.shape(views)[:2] != outputs["attributes_local"].shape[:2] or np.shape(views)[2:4] != images.shape[1:3]:
    raise ValueError(f"vapnet_panels: views of shape {np.shape(views)} for outputs of M = "
                     f"{outputs['attributes_local'].shape[1]} views of images {images.shape}; expected the views "
                     "the model saw, [B, M, H, W, 3]")
  local, global_ = outputs["attributes_local"], outputs["attributes_global"]  # [B, M, k]
  agreement = np.sum(local * global_, -1) / np.maximum(
      np.linalg.norm(local, axis=-1) * np.linalg.norm(global_, axis=-1), 1e-12)  # [B, M]
  b, m = agreement.shape
  colours = BOX_COLOURS[np.arange(m) % len(BOX_COLOURS)]
  boxed = image_grid.draw_boxes(images.astype(np.float32) / 255.0, np.asarray(boxes)[..., [1, 0, 3, 2]], colours)
  h, w = images.shape[1:3]
  frames = np.broadcast_to(np.asarray([0, 0, h, w], np.float32), (b * m, 1, 4))  # each view's border
  shown = image_grid.to_display(np.asarray(views)).reshape(b * m, h, w, 3)
  framed = image_grid.draw_boxes(shown, frames, np.tile(colours, (b, 1))[:, None], 2).reshape(b, m, h, w, 3)
  panels = np.concatenate([boxed[:, None], framed], axis=1)
  panel_titles = [["image"] + [f"cos(A_L, A_G) {a:.2f}" for a in row] for row in agreement]
  return panels, ("image", *(f"view {j + 1}" for j in range(m))), panel_titles


def write_a3m_attention(params, method_state, config: ml_collections.ConfigDict, images: np.ndarray, path: str,
                        attribute_names: tuple[str, ...] | None = None) -> str:
  """An A3M run's `a3m_panels` on uint8 images `[B, H, W, 3]` as a PNG at `path` -> `path`."""
  check_run(config, "a3m", "write_a3m_attention")
  panels, titles, _ = a3m_panels(model_outputs(params, method_state, config, images), images, attribute_names)
  return image_grid.write_grid(path, panels, column_titles=titles)


def write_deml_attention(params, method_state, config: ml_collections.ConfigDict, images: np.ndarray,
                         path: str) -> str:
  """A DeML run's `deml_panels` on uint8 images `[B, H, W, 3]` as a PNG at `path` -> `path`; needs
  I = `config.deml.num_scales` >= 2."""
  check_run(config, "deml", "write_deml_attention")
  if config.deml.num_scales < 2:
    raise ValueError(f"write_deml_attention: config.deml.num_scales={config.deml.num_scales}: one scale has no "
                     "object attention to show; expected I >= 2")
  panels, titles, _ = deml_panels(model_outputs(params, method_state, config, images), images)
  return image_grid.write_grid(path, panels, column_titles=titles)


def write_vapnet_views(params, method_state, config: ml_collections.ConfigDict, images: np.ndarray, path: str,
                       rng: jax.Array) -> str:
  """A VAPNet run's `vapnet_panels` for M views per image drawn with `rng` (as in training) on uint8
  images `[B, H, W, 3]`, as a PNG at `path` -> `path`. Needs a variant with local views (not "aux_only")."""
  check_run(config, "vapnet", "write_vapnet_views")
  if not vapnet.uses_views(config):
    raise ValueError(f"write_vapnet_views: config.vapnet.variant={config.vapnet.variant!r} trains without local "
                     "views; expected a variant that draws them (full, no_mean_encoders, consistency_only)")
  images = image_grid.check_images(images, pipeline.image_shape(config), "write_vapnet_views")
  views, boxes = vapnet.local_views(rng, jnp.asarray(image_grid.to_model_input(images)), config)
  outputs = model_outputs(params, method_state, config, images, views=views, boxes=boxes)
  panels, titles, panel_titles = vapnet_panels(outputs, images, np.asarray(views), np.asarray(boxes))
  return image_grid.write_grid(path, panels, column_titles=titles, panel_titles=panel_titles)
