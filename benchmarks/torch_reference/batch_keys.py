"""The check at the top of every reference `loss`: the batch has the keys the method reads, one row per image."""
from collections.abc import Sequence

import torch


def require(batch: dict[str, torch.Tensor], keys: Sequence[str], method: str) -> None:
  """Raises a ValueError naming the method and the missing or mis-sized key; `keys[0]` is "image" [B, 3, H, W]."""
  missing = [key for key in keys if key not in batch]
  if missing:
    raise ValueError(f"torch_reference.{method}: the batch has keys {sorted(batch)}; expected {list(keys)} "
                     f"(missing {missing})")
  image = batch["image"]
  if image.ndim != 4 or image.shape[1] != 3:
    raise ValueError(f"torch_reference.{method}: batch['image'] has shape {tuple(image.shape)}; expected "
                     "[B, 3, H, W] (to_torch converts jaxret's NHWC)")
  for key in keys[1:]:
    if batch[key].shape[0] != image.shape[0]:
      raise ValueError(f"torch_reference.{method}: batch[{key!r}] has {batch[key].shape[0]} rows; expected "
                       f"{image.shape[0]} (one per image)")
