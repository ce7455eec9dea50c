"""RoIAlign (He et al., Mask R-CNN, ICCV 2017) on NHWC maps, with torchvision's semantics.

`roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)` is
`torchvision.ops.roi_align` for boxes `[B, K, 4]` (K boxes per image, (x1, y1, x2, y2) in input
pixels): each of the `output_size` bins of a box averages `sampling_ratio` x `sampling_ratio`
bilinear samples at evenly spaced points inside the bin. With `aligned=True` (the default; the
half-pixel convention) box coordinates are continuous, pixel i covering [i, i + 1), so the box is
shifted by -0.5 pixel to index units (pixel centres at integers) before sampling; `aligned=False`
is the original Mask R-CNN code (no shift, boxes at least 1 x 1). torchvision's adaptive sampling
ratio (`sampling_ratio=0`: ceil(box size / bins) samples, a data-dependent shape) is not offered.

A bin is a separable weighted sum of the map (`jaxret.ops.bilinear`): its row (column) weights are
the mean of the 1-D interpolation weights of the bin's sampling rows (columns).
"""
import jax
import jax.numpy as jnp

from jaxret.ops.bilinear import interpolation_weights, separable_sample


def bin_weights(start: jax.Array, length: jax.Array, bins: int, sampling_ratio: int, size: int) -> jax.Array:
  """Along one axis: boxes from `start` of `length` (index units, `[...]`) cut into `bins` bins of
  `sampling_ratio` samples each, at `start + (bin + (s + 0.5) / sampling_ratio) * length / bins`
  -> the mean interpolation weights of each bin's samples `[..., bins, size]`."""
  samples = (jnp.arange(bins)[:, None] + (jnp.arange(sampling_ratio) + 0.5)[None, :] / sampling_ratio).reshape(-1)
  coords = start[..., None] + samples * (length / bins)[..., None]  # [..., bins * sampling_ratio]
  weights = interpolation_weights(coords, size)
  return weights.reshape(*weights.shape[:-2], bins, sampling_ratio, size).mean(axis=-2)


def roi_align(features: jax.Array, boxes: jax.Array, output_size: tuple[int, int],
              spatial_scale: float | tuple[float, float] = 1.0, sampling_ratio: int = 2,
              aligned: bool = True) -> jax.Array:
  """features `[B, H, W, C]`, boxes `[B, K, 4]` as (x1, y1, x2, y2) in input pixels (times
  `spatial_scale`, a float or (scale_y, scale_x), gives map pixels) -> `[B, K, oh, ow, C]` with
  (oh, ow) = `output_size`. `sampling_ratio` >= 1 samples per bin along each axis."""
  if sampling_ratio < 1:
    raise ValueError(f"roi_align: sampling_ratio={sampling_ratio}; expected an integer >= 1 (the adaptive "
                     "sampling_ratio=0 of torchvision has a data-dependent shape)")
  if boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
    raise ValueError(f"roi_align: boxes of shape {boxes.shape}; expected [B={features.shape[0]}, K, 4]")
  scale_y, scale_x = spatial_scale if isinstance(spatial_scale, tuple) else (spatial_scale, spatial_scale)
  boxes = boxes.astype(jnp.promote_types(boxes.dtype, jnp.float32))
  offset = 0.5 if aligned else 0.0
  x1, y1 = boxes[..., 0] * scale_x - offset, boxes[..., 1] * scale_y - offset
  width, height = boxes[..., 2] * scale_x - offset - x1, boxes[..., 3] * scale_y - offset - y1
  if not aligned:
    width, height = jnp.maximum(width, 1.0), jnp.maximum(height, 1.0)
  _, h, w, _ = features.shape
  rows = bin_weights(y1, height, output_size[0], sampling_ratio, h)
  columns = bin_weights(x1, width, output_size[1], sampling_ratio, w)
  return separable_sample(features, rows, columns)
