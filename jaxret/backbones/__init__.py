"""Backbones with torchvision's layers and names; each returns {"res2".."res5"} stage features.

`get_backbone("resnet50", width_multiplier=1.0, num_classes=None, dtype=jnp.bfloat16)` builds one by name;
`.stage_channels()` on the result gives the channels of each stage for heads.
"""
from typing import Callable

import flax.linen as nn

from jaxret.backbones.mobilenet_v2 import MobileNetV2, mobilenet_v2
from jaxret.backbones.resnet import ResNet, resnet18, resnet34, resnet50, resnet101

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "mobilenet_v2": mobilenet_v2,
}


def get_backbone(arch: str, width_multiplier: float = 1.0, **kwargs) -> nn.Module:
  """The backbone called `arch` with its channels scaled by `width_multiplier` (1.0 = the
  published model; ResNet stem width 64 * multiplier, MobileNetV2 `width_mult`), built with
  `kwargs` (num_classes, dtype, name)."""
  if arch not in BACKBONES:
    raise ValueError(f"Unknown backbone {arch!r}; expected one of {sorted(BACKBONES)}.")
  if arch == "mobilenet_v2":
    return BACKBONES[arch](width_mult=width_multiplier, **kwargs)
  return BACKBONES[arch](width=max(1, round(64 * width_multiplier)), **kwargs)


__all__ = ["BACKBONES", "MobileNetV2", "ResNet", "get_backbone", "mobilenet_v2", "resnet18",
           "resnet34", "resnet50", "resnet101"]
