"""VAPNet's local views in PyTorch (jaxret/ops/local_views.py): M distinct grid patches per image,
drawn at random and resized (bilinear, half-pixel centres, clamped to the patch) to the input size."""
from collections.abc import Sequence

import numpy as np
import torch

from torch_reference.roi_align import interpolation_weights


def grid_patch_boxes(height: int, width: int, grids: Sequence[int]) -> torch.Tensor:
  """int64 [P, 4]: for each n in `grids`, the n x n patches of floor(height/n) x floor(width/n)
  pixels, row by row, as (x1, y1, x2, y2)."""
  boxes = []
  for n in grids:  # a handful of grid sizes, at build time
    if n < 1 or height // n < 1 or width // n < 1:
      raise ValueError(f"grid_patch_boxes: an {n} x {n} grid of a {height} x {width} image; expected "
                       f"1 <= n <= {min(height, width)}")
    rows, columns = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ph, pw = height // n, width // n
    boxes.append(np.stack([columns * pw, rows * ph, (columns + 1) * pw, (rows + 1) * ph], axis=-1).reshape(-1, 4))
  return torch.from_numpy(np.concatenate(boxes).astype(np.int64))


def sample_patches(batch_size: int, num_views: int, num_patches: int, device=None) -> torch.Tensor:
  """int64 [B, M]: M distinct patch indices per image, uniformly drawn (top-M of uniform noise)."""
  return torch.rand(batch_size, num_patches, device=device).topk(num_views, dim=1).indices


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
  """images [B, C, H, W], integer pixel boxes [B, M, 4] -> the boxes resized to `size`, [B, M, C, oh, ow]."""
  _, _, h, w = images.shape

  def axis_weights(start, stop, out, size_in):
    start, stop = start.float(), stop.float()
    coords = start[..., None] + (torch.arange(out, device=start.device) + 0.5) * ((stop - start) / out)[..., None] - 0.5
    return interpolation_weights(torch.minimum(torch.maximum(coords, start[..., None]), stop[..., None] - 1.0), size_in)

  rows = axis_weights(boxes[..., 1], boxes[..., 3], size[0], h)
  columns = axis_weights(boxes[..., 0], boxes[..., 2], size[1], w)
  return torch.einsum("bkih,bchw,bkjw->bkcij", rows, images, columns)
