"""ResNet-18/34/50/101 feature trunks in plain PyTorch, structured as jaxret/backbones/resnet.py.

torchvision's layers and names (conv1, bn1, layer1..layer4; v1.5 bottleneck; BatchNorm
momentum 0.1, eps 1e-5) with jaxret's width multiplier and stage outputs: `forward` returns
{"res2".."res5"} (NCHW) and runs only the stages `start`..`stop`, as jaxret's `ResNet.__call__`
(DeML splits the trunk into FNet / GNet). No classifier: the methods never use one.
"""
import torch
from torch import nn

STAGES = ("stem", "res2", "res3", "res4", "res5")


def _conv(inplanes: int, planes: int, kernel: int, stride: int = 1) -> nn.Conv2d:
  """Bias-free conv with torch padding kernel // 2 (jaxret's `_conv`)."""
  return nn.Conv2d(inplanes, planes, kernel, stride, kernel // 2, bias=False)


class BasicBlock(nn.Module):
  """3x3 (stride) - BN - ReLU - 3x3 - BN, plus shortcut, ReLU: [B, C, H, W] -> [B, planes, H/s, W/s]."""
  expansion = 1

  def __init__(self, inplanes: int, planes: int, stride: int = 1):
    super().__init__()
    self.conv1 = _conv(inplanes, planes, 3, stride)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = _conv(planes, planes, 3)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = _downsample(inplanes, planes, stride)
    self.relu = nn.ReLU(inplace=True)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
  """v1.5 (stride on the 3x3): 1x1 - 3x3 (stride) - 1x1 (4 x planes): [B, C, H, W] -> [B, 4 planes, H/s, W/s]."""
  expansion = 4

  def __init__(self, inplanes: int, planes: int, stride: int = 1):
    super().__init__()
    self.conv1 = _conv(inplanes, planes, 1)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = _conv(planes, planes, 3, stride)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = _conv(planes, planes * 4, 1)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = _downsample(inplanes, planes * 4, stride)
    self.relu = nn.ReLU(inplace=True)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(inplanes: int, out: int, stride: int) -> nn.Module | None:
  """None (identity shortcut) or torchvision's 1x1 conv (stride) + BN when the shape changes."""
  if stride == 1 and inplanes == out:
    return None
  return nn.Sequential(_conv(inplanes, out, 1, stride), nn.BatchNorm2d(out))


def make_stage(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
  """One stage (torchvision's `layer{s}`): `blocks` blocks, the first with `stride`."""
  layers = [block(inplanes, planes, stride)]
  layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
  return nn.Sequential(*layers)


class ResNet(nn.Module):
  """A ResNet trunk of `width` stem channels (stage s has width * 2**s planes)."""

  def __init__(self, block: type[nn.Module], stage_sizes: tuple[int, ...], width: int = 64):
    super().__init__()
    self.block, self.stage_sizes, self.width = block, tuple(stage_sizes), width
    self.conv1 = _conv(3, width, 7, 2)
    self.bn1 = nn.BatchNorm2d(width)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    inplanes = width
    for s, blocks in enumerate(self.stage_sizes):
      self.add_module(f"layer{s + 1}", make_stage(block, inplanes, width * 2**s, blocks, 1 if s == 0 else 2))
      inplanes = width * 2**s * block.expansion
    for m in self.modules():  # torchvision's init
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

  def stage_channels(self) -> dict[str, int]:
    """Channels of "res2".."res5" (jaxret's `ResNet.stage_channels`)."""
    return {f"res{s + 2}": self.width * 2**s * self.block.expansion for s in range(len(self.stage_sizes))}

  def forward(self, x: torch.Tensor, start: str = "stem", stop: str = "res5") -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"res2".."res5": [B, C_s, H_s, W_s]} (strides 4, 8, 16, 32); with
    `start="res4"` x is the "res3" map and only res4..`stop` run (the output holds the stages run)."""
    if start not in STAGES[:-1] or stop not in STAGES[1:] or STAGES.index(start) > STAGES.index(stop):
      raise ValueError(f"ResNet: start={start!r}, stop={stop!r}: expected start in {STAGES[:-1]} and stop in "
                       f"{STAGES[1:]}, start before stop")
    if start == "stem":
      x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    out = {}
    for s in range(max(STAGES.index(start) - 1, 0), STAGES.index(stop)):
      x = getattr(self, f"layer{s + 1}")(x)
      out[f"res{s + 2}"] = x
    return out


RESNETS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
           "resnet50": (Bottleneck, (3, 4, 6, 3)), "resnet101": (Bottleneck, (3, 4, 23, 3))}


def resnet(arch: str, width_multiplier: float = 1.0) -> ResNet:
  """The trunk `arch` with stem width max(1, round(64 * width_multiplier)) (jaxret's `get_backbone`)."""
  if arch not in RESNETS:
    raise ValueError(f"config.backbone={arch!r}: the PyTorch reference has {sorted(RESNETS)}")
  block, stage_sizes = RESNETS[arch]
  return ResNet(block, stage_sizes, max(1, round(64 * width_multiplier)))


def stage_size(size: int, stage: str) -> int:
  """Height (or width) of `stage`'s map for an input side of `size` (torch's floor formulas):
  conv1 and the max-pool halve it, then each of res3..res5 (stride-2 3x3, padding 1)."""
  size = (size - 1) // 2 + 1  # conv1: 7x7, stride 2, padding 3
  size = (size - 1) // 2 + 1  # maxpool: 3x3, stride 2, padding 1
  for _ in range(STAGES.index(stage) - 1):
    size = (size - 1) // 2 + 1
  return size
