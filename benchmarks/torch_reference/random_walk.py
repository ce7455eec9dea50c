"""DeML's random-walk object attention in PyTorch (jaxret/ops/random_walk.py, Eqs. 2-3): on each
layer's map, T walk steps `M <- P^T M` over the distance graph of its positions; the maps of the
layers are resized (bilinear) to the image and averaged. The layers run as one batch, zero-padded
to the largest node and channel counts, as jaxret does. No gradient flows through the walk.
"""
from collections.abc import Sequence

import torch
import torch.nn.functional as F

STEPS = 10  # T of Eq. 3


def distance_graph(u: torch.Tensor) -> torch.Tensor:
  """Eq. 2: `D[a, b] = ||u_a - u_b||`: nodes [..., N, C] -> [..., N, N] (zero diagonal)."""
  squared = (u * u).sum(dim=-1)
  d2 = squared[..., :, None] + squared[..., None, :] - 2.0 * u @ u.transpose(-1, -2)
  eye = torch.eye(u.shape[-2], dtype=torch.bool, device=u.device)
  return torch.where(eye, 0.0, d2.clamp(min=0.0).sqrt())


def transition_matrix(d: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
  """Each row of D over its sum (row-stochastic): [..., N, N], valid bool [..., N] (padding has no
  edges) -> [..., N, N]; a node without outbound weight spreads uniformly over the valid nodes."""
  valid = valid.to(d.dtype)
  d = d * valid[..., :, None] * valid[..., None, :]
  total = d.sum(dim=-1, keepdim=True)
  uniform = valid[..., None, :] / valid.sum(dim=-1).clamp(min=1.0)[..., None, None]
  return torch.where(total > 0, d / torch.where(total > 0, total, 1.0), uniform * valid[..., :, None])


def propagate(p: torch.Tensor, m: torch.Tensor, steps: int = STEPS) -> torch.Tensor:
  """Eq. 3: `steps` walk steps `M_b <- sum_a P[a, b] M_a`: transition [..., N, N], mass [..., N] -> [..., N]."""
  for _ in range(steps):  # sequential by definition
    m = (m[..., None, :] @ p)[..., 0, :]
  return m


def resize_matrix(in_size: int, out_size: int, width: int, device=None) -> torch.Tensor:
  """The linear map of a bilinear (half-pixel) upsampling from `in_size` to `out_size` along one
  axis, [out_size, width], columns past `in_size` zero (padding)."""
  eye = torch.eye(in_size, device=device)[:, None, :]  # [in, 1, in]: one unit vector per row
  matrix = F.interpolate(eye, size=out_size, mode="linear", align_corners=False)[:, 0, :].T  # [out, in]
  return F.pad(matrix, (0, width - in_size))


def object_attention(maps: Sequence[torch.Tensor], out_size: tuple[int, int], steps: int = STEPS) -> torch.Tensor:
  """K maps [B, C_k, h_k, w_k] -> the object-attention proposal [B, out_h, out_w] (the walks' mass
  maps, resized to `out_size`, averaged over the layers)."""
  b, device = maps[0].shape[0], maps[0].device
  sizes = [tuple(m.shape[2:]) for m in maps]
  n_max, c_max = max(h * w for h, w in sizes), max(m.shape[1] for m in maps)
  h_max, w_max = max(h for h, _ in sizes), max(w for _, w in sizes)
  with torch.no_grad():
    nodes = torch.stack([F.pad(m.float().flatten(2).transpose(1, 2), (0, c_max - m.shape[1], 0, n_max - h * w))
                         for m, (h, w) in zip(maps, sizes)])  # [K, B, N, C]
    counts = torch.tensor([h * w for h, w in sizes], device=device)
    valid = torch.arange(n_max, device=device)[None, :] < counts[:, None]  # [K, N]
    m0 = valid / counts[:, None]
    p = transition_matrix(distance_graph(nodes), valid[:, None].expand(-1, b, -1))
    mass = propagate(p, m0[:, None].expand(-1, b, -1).contiguous(), steps)  # [K, B, N]
    # Node r * w_k + c of layer k sits at (r, c) of a [h_max, w_max] grid; index n_max is a zero.
    grid = torch.full((len(maps), h_max, w_max), n_max, dtype=torch.int64, device=device)
    for k, (h, w) in enumerate(sizes):  # the K layers' index grids, not data
      grid[k, :h, :w] = torch.arange(h * w, device=device).reshape(h, w)
    mass = F.pad(mass, (0, 1))
    gridded = torch.gather(mass, 2, grid.flatten(1)[:, None].expand(-1, b, -1)).reshape(-1, b, h_max, w_max)
    rows = torch.stack([resize_matrix(h, out_size[0], h_max, device) for h, _ in sizes])
    cols = torch.stack([resize_matrix(w, out_size[1], w_max, device) for _, w in sizes])
    return torch.einsum("kyh,kbhw,kxw->kbyx", rows, gridded, cols).mean(dim=0)
