"""The training augmentation on the accelerator: a jitted, batched function of uint8 images and
per-example keys, sharded like the batch (`config.data.pipeline = "device"`).

Input: the batches of `jaxret.data.decoded.DecodedImages` through `pipeline.train_dataset(...,
on_device=True)`: "image" uint8 canvases `[B, C_h, C_w, 3]`, "image_hw" `[B, 2]` and "position",
each example's place in the training stream. Example p's randomness is `fold_in(key(seed), p)`,
so it is the same on any number of devices and processes and after a resume.

Per example, as the host pipeline's transforms (`jaxret.data.augment`), whose pixel operations
are the reference this module is tested against:
- a box (`augmentation_params`): "random_resized_crop" draws torchvision's RandomResizedCrop
  (scale U(0.08, 1), log-uniform aspect in [3/4, 4/3], 10 tries, then the central crop of the
  clamped ratio); "random_crop" a uniformly placed window of the input size; "resize" the whole
  stored image (already at the input size);
- `crop_resize`: the box resized to the input size with Pillow's bilinear filter (antialiased
  when shrinking: the triangle widened by the scale), its support clipped to the box as a crop
  then resize clips to the crop, in Pillow's fixed point, horizontal pass then vertical (Pillow's
  `ImagingResampleInner`), each rounded to uint8 as Pillow's are. Each pass alone equals Pillow
  13's exactly; Pillow 13 as installed here runs the vertical pass first when the height shrinks
  and the width grows (measured, not in the C source read), and there about a fifth of the pixels
  differ by one level;
- a flip with probability 1/2; colour jitter (brightness, contrast, saturation, each by
  U(1 - s, 1 + s), in a random order, clipped after each and rounded to uint8 at the end);
- normalised with the ImageNet mean and standard deviation, float32.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Sharding

from jaxret.data import pipeline

FIXED_POINT = 2.0 ** 22  # Pillow's PRECISION_BITS for 8-bit images: coefficients in units of 2^-22
RRC_SCALE, RRC_RATIO, RRC_TRIES = (0.08, 1.0), (3 / 4, 4 / 3), 10  # torchvision's RandomResizedCrop
_STREAM = 0xA06  # separates these keys from the other uses of the seed


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the augmentation needs of the config (hashable: a static argument)."""
  augment: str  # resize | random_crop | random_resized_crop
  shape: tuple[int, int]  # (H, W) of the network input
  flip: bool
  jitter: float  # colour jitter strength s; 0 = none
  seed: int

  @classmethod
  def of(cls, config: ml_collections.ConfigDict) -> Settings:
    return cls(config.data.augment, pipeline.image_shape(config), bool(config.data.random_flip),
               float(config.data.color_jitter), int(config.seed))


def example_key(seed: int, position: jax.Array) -> jax.Array:
  """The key of the example at stream `position` (a uint32 scalar)."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _STREAM), position)


def resized_crop_box(key: jax.Array, height: jax.Array, width: jax.Array) -> jax.Array:
  """torchvision's RandomResizedCrop box (top, left, h, w) in an image of `height` x `width`
  (`augment.random_resized_crop`'s draws, made for all tries at once; the first valid one wins)."""
  scale_key, ratio_key, top_key, left_key = jax.random.split(key, 4)
  area = (height * width).astype(jnp.float32)
  target_area = area * jax.random.uniform(scale_key, (RRC_TRIES,), minval=RRC_SCALE[0], maxval=RRC_SCALE[1])
  aspect = jnp.exp(jax.random.uniform(ratio_key, (RRC_TRIES,), minval=math.log(RRC_RATIO[0]),
                                      maxval=math.log(RRC_RATIO[1])))
  cw = jnp.round(jnp.sqrt(target_area * aspect)).astype(jnp.int32)
  ch = jnp.round(jnp.sqrt(target_area / aspect)).astype(jnp.int32)
  valid = (cw > 0) & (cw <= width) & (ch > 0) & (ch <= height)
  first = jnp.argmax(valid)
  ch, cw = ch[first], cw[first]
  top = jnp.floor(jax.random.uniform(top_key) * (height - ch + 1)).astype(jnp.int32)
  left = jnp.floor(jax.random.uniform(left_key) * (width - cw + 1)).astype(jnp.int32)
  # no valid try: the central crop of the ratio clamped to RRC_RATIO
  image_aspect = width / height
  fallback_w = jnp.where(image_aspect > RRC_RATIO[1], jnp.round(height * RRC_RATIO[1]), width).astype(jnp.int32)
  fallback_h = jnp.where(image_aspect < RRC_RATIO[0], jnp.round(width / RRC_RATIO[0]), height).astype(jnp.int32)
  fallback = jnp.stack([jnp.round((height - fallback_h) / 2), jnp.round((width - fallback_w) / 2)]).astype(jnp.int32)
  found = jnp.any(valid)
  return jnp.stack([jnp.where(found, top, fallback[0]), jnp.where(found, left, fallback[1]),
                    jnp.where(found, ch, fallback_h), jnp.where(found, cw, fallback_w)])


def augmentation_params(key: jax.Array, image_hw: jax.Array, settings: Settings) -> dict[str, jax.Array]:
  """One example's draws: "box" int32 (top, left, h, w), "flip" bool, "order" int32 `[3]` (the
  jitter operations: 0 brightness, 1 contrast, 2 saturation) and "factors" float32 `[3]`."""
  box_key, flip_key, order_key, factor_key = jax.random.split(key, 4)
  height, width = image_hw[0], image_hw[1]
  out_h, out_w = settings.shape
  if settings.augment == "random_resized_crop":
    box = resized_crop_box(box_key, height, width)
  elif settings.augment == "random_crop":
    top_key, left_key = jax.random.split(box_key)
    top = jnp.floor(jax.random.uniform(top_key) * (height - out_h + 1)).astype(jnp.int32)
    left = jnp.floor(jax.random.uniform(left_key) * (width - out_w + 1)).astype(jnp.int32)
    box = jnp.stack([top, left, jnp.int32(out_h), jnp.int32(out_w)])
  else:
    box = jnp.stack([jnp.int32(0), jnp.int32(0), height, width])
  s = settings.jitter
  return {"box": box, "flip": settings.flip & (jax.random.uniform(flip_key) < 0.5),
          "order": jax.random.permutation(order_key, 3).astype(jnp.int32),
          "factors": jax.random.uniform(factor_key, (3,), minval=max(0.0, 1 - s), maxval=1 + s)}


def bilinear_weights(start: jax.Array, extent: jax.Array, out_size: int, canvas: int) -> jax.Array:
  """Pillow's 8-bit bilinear resampling of the `extent` pixels from `start` of a `canvas`-long
  axis to `out_size` pixels, as integer coefficients `[out_size, canvas]` in units of 2^-22
  (Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`): output o is centred at
  c = (o + 0.5) e / n in the crop (e = extent, n = out_size) and weighs crop pixel x by the
  triangle 1 - |x + 0.5 - c| / s, s = max(e / n, 1), over the pixels x with
  int(c - s + 0.5) <= x < int(c + s + 0.5), clipped to the crop, normalised to sum 1. With
  m = max(e, n) that weight is (2m - |(2x + 1) n - (2o + 1) e|) / 2m, and the window is
  floor(((2o + 1) e - 2m + n) / 2n) <= x < floor(((2o + 1) e + 2m + n) / 2n): integers, computed
  exactly (float32 centres round the weights across Pillow's fixed-point steps)."""
  n, e = out_size, extent.astype(jnp.int32)
  m = jnp.maximum(e, n)
  o = jnp.arange(n, dtype=jnp.int32)[:, None]
  x = jnp.arange(canvas, dtype=jnp.int32)[None, :] - start  # crop coordinate of every canvas pixel
  low = jnp.maximum(((2 * o + 1) * e - 2 * m + n) // (2 * n), 0)
  high = jnp.minimum(((2 * o + 1) * e + 2 * m + n) // (2 * n), e)
  numerator = jnp.maximum(2 * m - jnp.abs((2 * x + 1) * n - (2 * o + 1) * e), 0)
  numerator = jnp.where((x >= low) & (x < high), numerator, 0).astype(jnp.float32)
  total = jnp.sum(numerator, axis=1, keepdims=True)
  return jnp.floor(numerator / jnp.where(total == 0, 1.0, total) * FIXED_POINT + 0.5)


def resample_pass(coefficients: jax.Array, x: jax.Array, spec: str) -> jax.Array:
  """One of Pillow's resampling passes: the einsum `spec` of integer `coefficients` (units of
  2^-22) with uint8 levels `x`, then (sum + 2^21) >> 22 clipped to 0..255, computed exactly: the
  coefficients split into two 11-bit halves keep every float32 sum below 2^24, and the halves
  combine in int32 (a float32 sum of pixel x coefficient would round at 2^30)."""
  high, low = jnp.floor(coefficients / 2048.0), jnp.mod(coefficients, 2048.0)
  sums = [jnp.einsum(spec, c, x, precision="highest").astype(jnp.int32) for c in (high, low)]
  total = sums[0] * 2048 + sums[1] + (1 << 21)
  return jnp.clip(total >> 22, 0, 255).astype(jnp.float32)


def crop_resize(image: jax.Array, box: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """The `box` (top, left, h, w) of a uint8 canvas `[C_h, C_w, 3]` resized to `shape` (H, W) as
  Pillow's `resize(BILINEAR)` of that crop, horizontal pass then vertical -> float32 uint8
  levels `[H, W, 3]`."""
  rows = bilinear_weights(box[0], box[2], shape[0], image.shape[0])  # [H, C_h]
  cols = bilinear_weights(box[1], box[3], shape[1], image.shape[1])  # [W, C_w]
  horizontal = resample_pass(cols, image.astype(jnp.float32), "wx,yxc->ywc")
  return resample_pass(rows, horizontal, "hy,ywc->hwc")


def _grey(x: jax.Array) -> jax.Array:
  """ITU-R 601-2 luma (`augment._grey`)."""
  return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def adjust_colors(x: jax.Array, order: jax.Array, factors: jax.Array) -> jax.Array:
  """`augment.adjust_colors`: float32 levels `[H, W, 3]`, the operations `order` with `factors`."""
  operations = (
      lambda x, f: x * f,  # brightness: blend with black
      lambda x, f: f * x + (1 - f) * jnp.mean(_grey(x)),  # contrast: blend with the mean grey level
      lambda x, f: f * x + (1 - f) * _grey(x)[..., None],  # saturation: blend with the grey image
  )
  for k in range(3):  # three slots of a fixed pipeline, each picking its operation
    x = jnp.clip(jax.lax.switch(order[k], operations, x, factors[k]), 0, 255)
  return jnp.round(x)


def augment_example(image: jax.Array, image_hw: jax.Array, key: jax.Array, settings: Settings) -> jax.Array:
  """One example: uint8 canvas `[C_h, C_w, 3]`, its stored (h, w) and key -> uint8 levels
  `[H, W, 3]` (float32) before normalisation."""
  params = augmentation_params(key, image_hw, settings)
  x = crop_resize(image, params["box"], settings.shape)
  x = jnp.where(params["flip"], x[:, ::-1], x)
  if settings.jitter:
    x = adjust_colors(x, params["order"], params["factors"])
  return x


def augment_batch(batch: dict, settings: Settings) -> dict:
  """A batch of `pipeline.train_dataset(..., on_device=True)` -> the batch the training step
  reads: "image" float32 `[B, H, W, 3]` normalised; "image_hw" and "position" dropped."""
  batch = dict(batch)
  keys = jax.vmap(lambda p: example_key(settings.seed, p))(batch.pop("position").astype(jnp.uint32))
  levels = jax.vmap(lambda i, hw, k: augment_example(i, hw, k, settings))(batch["image"], batch.pop("image_hw"), keys)
  batch["image"] = (levels / 255.0 - pipeline.IMAGENET_MEAN) / pipeline.IMAGENET_STD
  return batch


def make_device_augment(config: ml_collections.ConfigDict, sharding: Sharding):
  """`augment_batch` for `config` under `jax.jit`, the batch in and out with `sharding` (the
  training batch's)."""
  settings = Settings.of(config)
  return jax.jit(lambda batch: augment_batch(batch, settings), in_shardings=sharding, out_shardings=sharding)
