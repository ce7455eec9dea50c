"""DeML's crop-and-zoom between scales in PyTorch (jaxret/ops/crop_zoom.py): the box around the
above-mean pixels of the attention map squared as the public code (side round((h + w) / 2) about its
centre, intersected with the image), cropped and resized (bilinear) back to the input size as
one einsum with per-image separable sampling matrices. No gradient flows through the box.
"""
import torch


def attention_box(attention: torch.Tensor) -> torch.Tensor:
  """[B, H, W] -> float32 [B, 4] (top, left, bottom, right) in pixels, bottom/right exclusive."""
  attention = attention.detach().float()
  _, h, w = attention.shape
  low = attention.amin(dim=(1, 2), keepdim=True)
  high = attention.amax(dim=(1, 2), keepdim=True)
  normalised = (attention - low) / (high - low).clamp(min=1e-12)
  above = normalised >= normalised.mean(dim=(1, 2), keepdim=True)

  def extent(mask_along: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.arange(size, dtype=torch.float32, device=mask_along.device)
    first = torch.where(mask_along, index, float(size)).amin(dim=1)
    last = torch.where(mask_along, index, -1.0).amax(dim=1) + 1
    return first, last

  top, bottom = extent(above.any(dim=2), h)
  left, right = extent(above.any(dim=1), w)
  height, width = bottom - top, right - left
  side = torch.round((height + width) / 2)
  top = top + torch.round((height - width) / 4)
  left = left + torch.round((width - height) / 4)
  return torch.stack([top.clamp(0, h), left.clamp(0, w), (top + side).clamp(0, h), (left + side).clamp(0, w)], dim=1)


def sampling_matrix(start: torch.Tensor, stop: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
  """Bilinear weights [B, out_size, in_size] resizing the pixels [start, stop) of an axis to `out_size`."""
  scale = (stop - start) / out_size
  centres = start[:, None] + (torch.arange(out_size, device=start.device)[None] + 0.5) * scale[:, None] - 0.5
  centres = torch.minimum(torch.maximum(centres, start[:, None]), torch.maximum(stop - 1, start)[:, None])
  pixels = torch.arange(in_size, dtype=torch.float32, device=start.device)
  return (1.0 - (centres[..., None] - pixels).abs()).clamp(min=0)


def crop_and_zoom(images: torch.Tensor, boxes: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
  """images [B, C, H, W], boxes [B, 4] (top, left, bottom, right) -> [B, C, out_h, out_w]."""
  boxes = boxes.detach().float()
  _, _, h, w = images.shape
  rows = sampling_matrix(boxes[:, 0], boxes[:, 2], h, out_size[0]).to(images.dtype)
  cols = sampling_matrix(boxes[:, 1], boxes[:, 3], w, out_size[1]).to(images.dtype)
  return torch.einsum("byh,bchw,bxw->bcyx", rows, images, cols)


def attend_and_zoom(images: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
  """The next scale's input: images [B, C, H, W], attention [B, H, W] -> (crops [B, C, H, W] in
  channels-last memory, boxes [B, 4])."""
  boxes = attention_box(attention)
  zoomed = crop_and_zoom(images, boxes, tuple(images.shape[2:]))
  return zoomed.contiguous(memory_format=torch.channels_last), boxes
