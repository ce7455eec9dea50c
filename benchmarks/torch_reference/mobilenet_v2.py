"""MobileNetV2 feature trunk in plain PyTorch, structured as torchvision's and jaxret/backbones/mobilenet_v2.py.

torchvision's `features.{i}` layers and names (Conv2dNormActivation, InvertedResidual `conv.{j}`,
BatchNorm momentum 0.1, eps 1e-5, ReLU6, channels rounded to multiples of 8) with jaxret's width
multiplier and stage outputs: `forward` returns {"res2".."res5"} (NCHW), the outputs of
features.3, .6, .13 and .18. No classifier: the methods never use one.
"""
import torch
from torch import nn

# torchvision's inverted residual settings: expansion t, channels c, repeats n, first stride s.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STAGE_FEATURES = {3: "res2", 6: "res3", 13: "res4", 18: "res5"}


def make_divisible(v: float, divisor: int = 8) -> int:
  """torchvision's channel rounding: nearest multiple of `divisor`, never below 90% of v."""
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
  """torchvision Conv2dNormActivation: children 0 (conv), 1 (BN), 2 (ReLU6)."""
  return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
  """[1x1 expand -] 3x3 depthwise (stride) - 1x1 linear projection, plus the input when shapes allow."""

  def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
    super().__init__()
    hidden = int(round(inp * expand_ratio))
    self.use_res_connect = stride == 1 and inp == oup
    layers = [_conv_bn_relu6(inp, hidden, 1)] if expand_ratio != 1 else []
    layers += [_conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, oup, 1, bias=False),
               nn.BatchNorm2d(oup)]
    self.conv = nn.Sequential(*layers)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
  """torchvision mobilenet_v2's `features` at `width_mult`."""

  def __init__(self, width_mult: float = 1.0):
    super().__init__()
    inp = make_divisible(32 * width_mult)
    features = [_conv_bn_relu6(3, inp, 3, 2)]
    for t, c, n, s in SETTINGS:
      for i in range(n):
        out = make_divisible(c * width_mult)
        features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
        inp = out
    self.last = make_divisible(1280 * max(1.0, width_mult))
    features.append(_conv_bn_relu6(inp, self.last, 1))
    self.features = nn.Sequential(*features)
    self.width_mult = width_mult
    for m in self.modules():  # torchvision's init
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out")

  def stage_channels(self) -> dict[str, int]:
    """Channels of "res2".."res5" (jaxret's `MobileNetV2.stage_channels`)."""
    channels = {name: make_divisible(c * self.width_mult) for name, c in (("res2", 24), ("res3", 32), ("res4", 96))}
    return channels | {"res5": self.last}

  def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"res2".."res5": [B, C_s, H_s, W_s]} (strides 4, 8, 16, 32)."""
    out = {}
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in STAGE_FEATURES:
        out[STAGE_FEATURES[i]] = x
    return out
