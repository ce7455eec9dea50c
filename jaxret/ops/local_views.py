"""Local views: grid patches of an image, drawn at random and magnified to the input size.

VAPNet (papers/vapnet.txt, Sec. 3.2, "Input sampling") splits an H x W input into n x n patches
of floor(H/n) x floor(W/n) pixels for n in (2, 4, 8, 16), 4 + 16 + 64 + 256 = 340 candidates,
draws M of them per image at each iteration and resizes each to the input size with bilinear
interpolation (`jaxret.ops.bilinear.crop_and_resize`). Boxes are (x1, y1, x2, y2) in pixels, pixel
i covering [i, i + 1), the box convention of `jaxret.ops.roi_align`.
"""
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


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
