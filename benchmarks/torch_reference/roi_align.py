"""RoIAlign in PyTorch with jaxret/ops/roi_align.py's sampling (torchvision's semantics, aligned=True
by default; torchvision.ops is not available): each bin averages `sampling_ratio`^2 bilinear
samples, computed as two einsums with separable per-box weights (no loop over boxes).
"""
import torch


def interpolation_weights(coords: torch.Tensor, size: int) -> torch.Tensor:
  """Bilinear weights along one axis: sample positions [..., S] (pixel i centred at i) -> [..., S, size].
  A sample outside [-1, size] weighs nothing; inside it is clamped to [0, size - 1]."""
  inside = (coords >= -1.0) & (coords <= size)
  clamped = coords.clamp(0.0, size - 1.0)
  pixels = torch.arange(size, dtype=coords.dtype, device=coords.device)
  weights = (1.0 - (clamped[..., None] - pixels).abs()).clamp(min=0)
  return weights * inside[..., None]


def bin_weights(start: torch.Tensor, length: torch.Tensor, bins: int, sampling_ratio: int, size: int) -> torch.Tensor:
  """Boxes from `start` of `length` [...] cut into `bins` bins of `sampling_ratio` samples -> the
  mean interpolation weights of each bin's samples [..., bins, size]."""
  offsets = (torch.arange(bins, device=start.device)[:, None]
             + (torch.arange(sampling_ratio, device=start.device) + 0.5)[None, :] / sampling_ratio).reshape(-1)
  coords = start[..., None] + offsets * (length / bins)[..., None]
  weights = interpolation_weights(coords, size)
  return weights.reshape(*weights.shape[:-2], bins, sampling_ratio, size).mean(dim=-2)


def separable_sample(features: torch.Tensor, row_weights: torch.Tensor, column_weights: torch.Tensor) -> torch.Tensor:
  """features [B, C, H, W], row weights [B, K, I, H], column weights [B, K, J, W] -> [B, K, C, I, J]."""
  return torch.einsum("bkih,bchw,bkjw->bkcij", row_weights.to(features.dtype), features,
                      column_weights.to(features.dtype))


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: tuple[int, int],
              spatial_scale: tuple[float, float] = (1.0, 1.0), sampling_ratio: int = 2,
              aligned: bool = True) -> torch.Tensor:
  """features [B, C, H, W], boxes [B, K, 4] (x1, y1, x2, y2 in input pixels; times `spatial_scale`
  (scale_y, scale_x) gives map pixels) -> [B, K, C, oh, ow]."""
  if boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
    raise ValueError(f"roi_align: boxes of shape {tuple(boxes.shape)}; expected [B={features.shape[0]}, K, 4]")
  scale_y, scale_x = spatial_scale
  boxes = boxes.float()
  offset = 0.5 if aligned else 0.0
  x1, y1 = boxes[..., 0] * scale_x - offset, boxes[..., 1] * scale_y - offset
  width, height = boxes[..., 2] * scale_x - offset - x1, boxes[..., 3] * scale_y - offset - y1
  if not aligned:
    width, height = width.clamp(min=1.0), height.clamp(min=1.0)
  _, _, h, w = features.shape
  rows = bin_weights(y1, height, output_size[0], sampling_ratio, h)
  columns = bin_weights(x1, width, output_size[1], sampling_ratio, w)
  return separable_sample(features, rows, columns)
