"""ResNet-18/34/50/101 with torchvision's layers, padding and parameter shapes (v1.5 bottleneck).

Flax names follow torchvision, so importing a torchvision state dict is a fixed renaming
(`params` holds weights, `batch_stats` the BatchNorm running statistics):

  torchvision key                          Flax path
  conv1.weight                             params/conv1/kernel          OIHW -> HWIO: w.transpose(2, 3, 1, 0)
  bn1.weight / bn1.bias                    params/bn1/scale, params/bn1/bias
  bn1.running_mean / bn1.running_var       batch_stats/bn1/mean, batch_stats/bn1/var
  layer{s}.{b}.conv{k}.weight              params/layer{s}_{b}/conv{k}/kernel   (k = 1, 2 [, 3])
  layer{s}.{b}.bn{k}.*                     layer{s}_{b}/bn{k}/*          as bn1
  layer{s}.{b}.downsample.0.weight         params/layer{s}_{b}/downsample_conv/kernel
  layer{s}.{b}.downsample.1.*              layer{s}_{b}/downsample_bn/*  as bn1
  fc.weight / fc.bias                      params/fc/kernel ([out, in] -> [in, out]: w.T), params/fc/bias

`*.num_batches_tracked` has no counterpart. s = 1..4, b = 0..n-1 as in torchvision.
"""
from typing import ClassVar, Sequence

import chex
import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from jaxret.backbones import matmul_conv, shifted_max_pool

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torch.nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the weight (bias here zero).
_fc_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
_PAD1 = ((1, 1), (1, 1))


def _conv(features: int, kernel: int, stride: int, dtype: Dtype, name: str) -> nn.Conv:
  """Bias-free conv with torch padding (kernel // 2 each side), params in float32."""
  p = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=stride, padding=((p, p), (p, p)), use_bias=False,
                 dtype=dtype, param_dtype=jnp.float32, kernel_init=_conv_init, name=name,
                 conv_general_dilated=matmul_conv.conv_general_dilated)


def _norm(train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  """BatchNorm as torch.nn.BatchNorm2d(momentum=0.1, eps=1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      param_dtype=jnp.float32, name=name)


class BasicBlock(nn.Module):
  """torchvision BasicBlock: 3x3 (stride) - BN - ReLU - 3x3 - BN, plus shortcut, ReLU.

  Maps [B, H, W, C] to [B, H / stride, W / stride, planes].
  """
  planes: int
  stride: int = 1
  dtype: Dtype = jnp.float32
  expansion: ClassVar[int] = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    y = _conv(self.planes, 3, self.stride, self.dtype, "conv1")(x)
    y = nn.relu(_norm(train, self.dtype, "bn1")(y))
    y = _conv(self.planes, 3, 1, self.dtype, "conv2")(y)
    y = _norm(train, self.dtype, "bn2")(y)
    return nn.relu(y + _shortcut(x, self.planes, self.stride, train, self.dtype))


class Bottleneck(nn.Module):
  """torchvision Bottleneck (v1.5: stride on the 3x3): 1x1 - 3x3 (stride) - 1x1 (4 x planes).

  Maps [B, H, W, C] to [B, H / stride, W / stride, 4 * planes].
  """
  planes: int
  stride: int = 1
  dtype: Dtype = jnp.float32
  expansion: ClassVar[int] = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    y = _conv(self.planes, 1, 1, self.dtype, "conv1")(x)
    y = nn.relu(_norm(train, self.dtype, "bn1")(y))
    y = _conv(self.planes, 3, self.stride, self.dtype, "conv2")(y)
    y = nn.relu(_norm(train, self.dtype, "bn2")(y))
    y = _conv(self.planes * 4, 1, 1, self.dtype, "conv3")(y)
    y = _norm(train, self.dtype, "bn3")(y)
    return nn.relu(y + _shortcut(x, self.planes * 4, self.stride, train, self.dtype))


def _shortcut(x: jnp.ndarray, out: int, stride: int, train: bool, dtype: Dtype) -> jnp.ndarray:
  """Identity, or torchvision's `downsample` (1x1 conv with stride + BN) when the shape changes.

  Called inside a block's compact `__call__`, so its modules are that block's children.
  """
  if stride == 1 and x.shape[-1] == out:
    return x
  x = _conv(out, 1, stride, dtype, "downsample_conv")(x)
  return _norm(train, dtype, "downsample_bn")(x)


class ResNet(nn.Module):
  """torchvision ResNet returning stage features; build it with `resnet18` ... `resnet101`.

  Attributes:
    stage_sizes: blocks per stage (layer1..layer4).
    block_cls: `BasicBlock` or `Bottleneck`.
    width: stem channels; stage i has width * 2**i planes (64 is torchvision's).
    num_classes: when set, global average pool + Dense `fc` add `"logits"` [B, num_classes].
    dtype: compute dtype; parameters stay float32.
  """
  stage_sizes: Sequence[int]
  block_cls: type[nn.Module]
  width: int = 64
  num_classes: int | None = None
  dtype: Dtype = jnp.float32

  def stage_channels(self) -> dict[str, int]:
    """Channels of "res2".."res5", e.g. 256, 512, 1024, 2048 for ResNet-50 at width 64."""
    expansion = self.block_cls.expansion
    return {f"res{s + 2}": self.width * 2**s * expansion for s in range(len(self.stage_sizes))}

  @nn.compact
  def __call__(self, images: jnp.ndarray, *, train: bool, start: str = "stem",
               stop: str = "res5") -> dict[str, jnp.ndarray]:
    """images [B, H, W, C] -> {"res2".."res5": [B, H_s, W_s, C_s]} (strides 4, 8, 16, 32).

    With H = 225: conv1 113, maxpool 57, then res2..res5 57, 29, 15, 8 (torch's floor formulas).
    `start` / `stop` run only part of the network, with the same parameters (a backbone split
    into two nets, as DeML's FNet / GNet): `start="res4"` takes the "res3" map as input and
    runs res4..`stop`; the output holds the stages run ("logits" only when stop is "res5").
    """
    chex.assert_rank(images, 4)
    stages = ("stem", *self.stage_channels())
    if start not in stages or stop not in stages[1:] or stages.index(start) > stages.index(stop):
      raise ValueError(f"ResNet: start={start!r}, stop={stop!r}: expected start in {stages} and stop in "
                       f"{stages[1:]}, start before stop")
    x = images
    if start == "stem":
      x = _conv(self.width, 7, 2, self.dtype, "conv1")(x)
      x = nn.relu(_norm(train, self.dtype, "bn1")(x))
      x = shifted_max_pool.max_pool(x, (3, 3), strides=(2, 2), padding=_PAD1)  # -inf padding, as torch
    out = {}
    for s in range(max(stages.index(start) - 1, 0), stages.index(stop)):
      for b in range(self.stage_sizes[s]):
        stride = 2 if s > 0 and b == 0 else 1
        block = self.block_cls(planes=self.width * 2**s, stride=stride, dtype=self.dtype,
                               name=f"layer{s + 1}_{b}")
        x = block(x, train=train)
      out[f"res{s + 2}"] = x
    if self.num_classes is not None and stop == stages[-1]:
      pooled = jnp.mean(x, axis=(1, 2))
      out["logits"] = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32,
                               kernel_init=_fc_init, name="fc")(pooled)
    return out


def resnet18(**kwargs) -> ResNet:
  """ResNet-18: BasicBlock x (2, 2, 2, 2); stage channels 1, 2, 4, 8 x width."""
  return ResNet(stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock, **kwargs)


def resnet34(**kwargs) -> ResNet:
  """ResNet-34: BasicBlock x (3, 4, 6, 3); stage channels 1, 2, 4, 8 x width."""
  return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock, **kwargs)


def resnet50(**kwargs) -> ResNet:
  """ResNet-50: Bottleneck x (3, 4, 6, 3); stage channels 4, 8, 16, 32 x width."""
  return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck, **kwargs)


def resnet101(**kwargs) -> ResNet:
  """ResNet-101: Bottleneck x (3, 4, 23, 3); stage channels 4, 8, 16, 32 x width."""
  return ResNet(stage_sizes=(3, 4, 23, 3), block_cls=Bottleneck, **kwargs)
