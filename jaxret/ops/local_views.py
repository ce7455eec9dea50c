"""Local views: grid patches of an image, drawn at random and magnified to the input size.

VAPNet (papers/vapnet.txt, Sec. 3.2, "Input sampling") splits an H x W input into n x n patches
of floor(H/n) x floor(W/n) pixels for n in (2, 4, 8, 16), 4 + 16 + 64 + 256 = 340 candidates,
draws M of them per image at each iteration and resizes each to the input size with bilinear
interpolation. Boxes are (x1, y1, x2, y2) in pixels, pixel i covering [i, i + 1), the box
convention of `jaxret.ops.roi_align`.
"""
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxret.ops.roi_align import interpolation_weights, separable_sample

PAPER_GRIDS = (2, 4, 8, 16)  # 340 patches


def grid_patch_boxes(height: int, width: int, grids: Sequence[int] = PAPER_GRIDS) -> np.ndarray:
  """int32 `[P, 4]`, P = sum n^2: for each n in `grids` (in order), the n x n patches of
  floor(height/n) x floor(width/n) pixels, row by row, as (x1, y1, x2, y2)."""
  boxes = []
  for n in grids:  # a handful of grid sizes, at trace time
    if n < 1 or height // n < 1 or width // n < 1:
      raise ValueError(f"grid_patch_boxes: an {n} x {n} grid of a {height} x {width} image; expected "
                       f"1 <= n <= {min(height, width)}")
    rows, columns = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ph, pw = height // n, width // n
    boxes.append(np.stack([columns * pw, rows * ph, (columns + 1) * pw, (rows + 1) * ph], axis=-1).reshape(-1, 4))
  return np.concatenate(boxes).astype(np.int32)


def sample_patches(rng: jax.Array, batch_size: int, num_views: int, num_patches: int) -> jax.Array:
  """int32 `[B, M]`: for each image, M distinct patch indices drawn uniformly from `num_patches`."""
  if not 1 <= num_views <= num_patches:
    raise ValueError(f"sample_patches: {num_views} views of {num_patches} patches; expected 1 <= M <= {num_patches}")
  return jax.lax.top_k(jax.random.uniform(rng, (batch_size, num_patches)), num_views)[1].astype(jnp.int32)


def crop_and_resize(images: jax.Array, boxes: jax.Array, size: tuple[int, int]) -> jax.Array:
  """images `[B, H, W, C]`, integer pixel boxes `[B, M, 4]` -> the boxes' contents resized to `size`
  (oh, ow) by bilinear interpolation, `[B, M, oh, ow, C]`.

  Output pixel j samples the crop at `x1 + (j + 0.5) * (x2 - x1) / ow - 0.5` (half-pixel centres,
  as jax.image.resize, cv2.resize and PyTorch's `align_corners=False`), clamped to the crop's own
  pixels: the crop is resized on its own, nothing outside the box leaks in."""
  _, h, w, _ = images.shape

  def axis_weights(start, stop, out, size_in):
    start, stop = start.astype(jnp.float32), stop.astype(jnp.float32)
    coords = start[..., None] + (jnp.arange(out) + 0.5) * ((stop - start) / out)[..., None] - 0.5
    return interpolation_weights(jnp.clip(coords, start[..., None], stop[..., None] - 1.0), size_in)

  rows = axis_weights(boxes[..., 1], boxes[..., 3], size[0], h)
  columns = axis_weights(boxes[..., 0], boxes[..., 2], size[1], w)
  return separable_sample(images, rows, columns)
