"""Bilinear sampling as separable weight matrices: the one kernel behind RoIAlign
(`jaxret.ops.roi_align`), VAPNet's local views (`jaxret.ops.local_views`) and DeML's crop-and-zoom
(`jaxret.ops.crop_zoom`).

Bilinear interpolation is a product of two 1-D tent functions, so sampling a map at a grid of
points is `out[b, k, i, j] = sum_{h, w} Ry[b, k, i, h] F[b, h, w] Rx[b, k, j, w]`, with Ry (Rx) the
interpolation weights of the sampled rows (columns): two einsums, static shapes under jit,
differentiable in the features and, almost everywhere, in the sample positions.
"""
import jax
import jax.numpy as jnp


def interpolation_weights(coords: jax.Array, size: int) -> jax.Array:
  """torchvision's bilinear interpolation along one axis: sample positions `coords` `[..., S]` in
  index units (centre of pixel i at i) -> weights `[..., S, size]` over the axis's pixels.

  A sample outside [-1, size] contributes nothing (weights 0); inside, it is clamped to
  [0, size - 1] and split between its two nearest pixels (weights 1 - d and d)."""
  inside = (coords >= -1.0) & (coords <= size)
  clamped = jnp.clip(coords, 0.0, size - 1.0)
  weights = jnp.maximum(0.0, 1.0 - jnp.abs(clamped[..., None] - jnp.arange(size, dtype=coords.dtype)))
  return jnp.where(inside[..., None], weights, 0.0)


def separable_sample(features: jax.Array, row_weights: jax.Array, column_weights: jax.Array) -> jax.Array:
  """features `[B, H, W, C]`, row weights `[B, K, I, H]`, column weights `[B, K, J, W]` ->
  `[B, K, I, J, C]`: `sum_{h, w} Ry[b, k, i, h] F[b, h, w, c] Rx[b, k, j, w]`."""
  dtype = features.dtype
  return jnp.einsum("bkih,bhwc,bkjw->bkijc", row_weights.astype(dtype), features, column_weights.astype(dtype))


def crop_weights(start: jax.Array, stop: jax.Array, out: int, size: int) -> jax.Array:
  """Along one axis: the pixels `[start, stop)` (`[...]`) resized to `out` samples -> weights
  `[..., out, size]`. Sample j sits at `start + (j + 0.5) (stop - start) / out - 0.5` (half-pixel
  centres, as jax.image.resize, cv2.resize and PyTorch's `align_corners=False`), clamped to the
  crop's own pixels: nothing outside the box leaks in."""
  start, stop = start.astype(jnp.float32), stop.astype(jnp.float32)
  coords = start[..., None] + (jnp.arange(out) + 0.5) * ((stop - start) / out)[..., None] - 0.5
  return interpolation_weights(jnp.clip(coords, start[..., None], jnp.maximum(stop - 1.0, start)[..., None]), size)


def crop_and_resize(images: jax.Array, boxes: jax.Array, size: tuple[int, int]) -> jax.Array:
  """images `[B, H, W, C]`, pixel boxes `[B, K, 4]` as (x1, y1, x2, y2), pixel i covering [i, i + 1)
  -> each box's contents resized to `size` (oh, ow) by bilinear interpolation, `[B, K, oh, ow, C]`
  (`crop_weights` along each axis)."""
  _, h, w, _ = images.shape
  rows = crop_weights(boxes[..., 1], boxes[..., 3], size[0], h)
  columns = crop_weights(boxes[..., 0], boxes[..., 2], size[1], w)
  return separable_sample(images, rows, columns)
