"""MobileNetV2 with torchvision's layers, padding, channel rounding and parameter shapes.

Flax names follow torchvision's `features.{i}` indices: a torchvision key maps to a Flax path by
splitting off `features.{i}.` as the module `features_{i}` and writing the rest of the module path
with `_` for `.`; `classifier.1` becomes `classifier_1`. Leaves: conv `weight` -> `kernel`
(OIHW -> HWIO: w.transpose(2, 3, 1, 0), depthwise [C, 1, 3, 3] -> [3, 3, 1, C] by the same
transpose); BN `weight`/`bias` -> params `scale`/`bias`, `running_mean`/`running_var` ->
batch_stats `mean`/`var`; Linear `weight` -> `kernel` (w.T). For example:

  features.0.0.weight              params/features_0/0/kernel         (stem 3x3 conv, stride 2)
  features.0.1.running_var         batch_stats/features_0/1/var
  features.1.conv.0.0.weight       params/features_1/conv_0_0/kernel  (t = 1: depthwise 3x3)
  features.1.conv.1.weight         params/features_1/conv_1/kernel    (t = 1: 1x1 projection)
  features.1.conv.2.weight         params/features_1/conv_2/scale     (t = 1: projection BN)
  features.{i}.conv.0.0.weight     params/features_{i}/conv_0_0/kernel  (i >= 2: 1x1 expansion)
  features.{i}.conv.0.1.*          features_{i}/conv_0_1/*              (expansion BN)
  features.{i}.conv.1.0.weight     params/features_{i}/conv_1_0/kernel  (depthwise 3x3)
  features.{i}.conv.1.1.*          features_{i}/conv_1_1/*              (depthwise BN)
  features.{i}.conv.2.weight       params/features_{i}/conv_2/kernel    (1x1 projection)
  features.{i}.conv.3.*            features_{i}/conv_3/*                (projection BN)
  features.18.0.weight             params/features_18/0/kernel        (1x1 conv to 1280)
  features.18.1.*                  features_18/1/*
  classifier.1.weight / .bias      params/classifier_1/kernel, params/classifier_1/bias

`*.num_batches_tracked` has no counterpart; `classifier.0` is the dropout.
"""
import chex
import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from jaxret.backbones import matmul_conv

# torchvision: kaiming_normal_(mode="fan_out") on convs, N(0, 0.01) on the Linear, zero biases.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
_fc_init = nn.initializers.normal(0.01)

# torchvision's inverted residual settings: expansion t, channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
    (6, 320, 1, 1))
# The torchvision `features` index whose output is each stage (strides 4, 8, 16, 32).
STAGE_FEATURES: dict[str, int] = {"res2": 3, "res3": 6, "res4": 13, "res5": 18}


def _make_divisible(v: float, divisor: int = 8) -> int:
  """torchvision's channel rounding: nearest multiple of `divisor`, never below 90% of v."""
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


def _conv(features: int, kernel: int, stride: int, groups: int, dtype: Dtype, name: str) -> nn.Conv:
  """Bias-free conv with torch padding (kernel // 2 each side), params in float32; 1 x 1 and
  depthwise convs through `matmul_conv` (faster on XLA:CPU)."""
  p = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=stride, padding=((p, p), (p, p)),
                 feature_group_count=groups, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                 kernel_init=_conv_init, conv_general_dilated=matmul_conv.conv_general_dilated, name=name)


def _norm(train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  """BatchNorm as torch.nn.BatchNorm2d(momentum=0.1, eps=1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      param_dtype=jnp.float32, name=name)


def _conv_bn_relu6(x: jnp.ndarray, features: int, kernel: int, stride: int, groups: int,
                   train: bool, dtype: Dtype, prefix: str) -> jnp.ndarray:
  """torchvision Conv2dNormActivation as children `{prefix}0` (conv), `{prefix}1` (BN).

  Called inside a compact `__call__`, so the modules belong to the caller.
  """
  x = _conv(features, kernel, stride, groups, dtype, f"{prefix}0")(x)
  return nn.relu6(_norm(train, dtype, f"{prefix}1")(x))


class ConvBNReLU6(nn.Module):
  """features.0 and features.18: conv (child `0`) - BN (child `1`) - ReLU6.

  [B, H, W, C] -> [B, H / stride, W / stride, features].
  """
  features: int
  kernel: int
  stride: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    return _conv_bn_relu6(x, self.features, self.kernel, self.stride, 1, train, self.dtype, "")


class InvertedResidual(nn.Module):
  """torchvision InvertedResidual: [1x1 expand -] 3x3 depthwise (stride) - 1x1 linear projection.

  Children mirror `conv.{j}[.{k}]` as `conv_{j}[_{k}]` (see the module docstring). The input is
  added back when stride is 1 and channels are unchanged. [B, H, W, C] -> [B, H / s, W / s, out].
  """
  out: int
  stride: int
  expand_ratio: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    inp = x.shape[-1]
    hidden = int(round(inp * self.expand_ratio))
    y, j = x, 0
    if self.expand_ratio != 1:
      y = _conv_bn_relu6(y, hidden, 1, 1, 1, train, self.dtype, "conv_0_")
      j = 1
    y = _conv_bn_relu6(y, hidden, 3, self.stride, hidden, train, self.dtype, f"conv_{j}_")
    y = _conv(self.out, 1, 1, 1, self.dtype, f"conv_{j + 1}")(y)
    y = _norm(train, self.dtype, f"conv_{j + 2}")(y)
    if self.stride == 1 and inp == self.out:
      y = x + y
    return y


def _layers(width_mult: float) -> list[tuple[type[nn.Module], tuple]]:
  """torchvision's `features` 0..18 as (module class, arguments before dtype): the stem conv, the
  inverted residual blocks, the last 1 x 1 conv."""
  layers = [(ConvBNReLU6, (_make_divisible(32 * width_mult), 3, 2))]
  for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
    layers += [(InvertedResidual, (_make_divisible(c * width_mult), s if r == 0 else 1, t)) for r in range(n)]
  return layers + [(ConvBNReLU6, (_make_divisible(1280 * max(1.0, width_mult)), 1, 1))]


class MobileNetV2(nn.Module):
  """torchvision mobilenet_v2 returning stage features.

  Attributes:
    width_mult: channel multiplier; channels are rounded to multiples of 8 as torchvision does,
      the last conv has 1280 * max(1, width_mult) channels.
    num_classes: when set, global average pool, dropout 0.2 (needs a "dropout" rng when training)
      and Dense `classifier_1` add `"logits"` [B, num_classes].
    dtype: compute dtype; parameters stay float32.
  """
  width_mult: float = 1.0
  num_classes: int | None = None
  dtype: Dtype = jnp.float32

  def stage_channels(self) -> dict[str, int]:
    """Channels of "res2".."res5": 24, 32, 96, 1280 at width_mult 1."""
    channels = {name: _make_divisible(c * self.width_mult)
                for name, c in (("res2", 24), ("res3", 32), ("res4", 96))}
    return channels | {"res5": _make_divisible(1280 * max(1.0, self.width_mult))}

  @nn.compact
  def __call__(self, images: jnp.ndarray, *, train: bool, start: str = "stem",
               stop: str = "res5") -> dict[str, jnp.ndarray]:
    """images [B, H, W, C] -> {"res2".."res5": [B, H_s, W_s, C_s]} (strides 4, 8, 16, 32).

    res2..res5 are the outputs of features.3, .6, .13, .18 (24, 32, 96, 1280 channels at
    width_mult 1); with H = 225 their sizes are 57, 29, 15, 8. `start` / `stop` run only part
    of the network with the same parameters, as ResNet's: `start="res4"` takes the "res3" map
    as input and runs res4..`stop` (features.7..); "logits" only when stop is "res5".
    """
    chex.assert_rank(images, 4)
    stages = ("stem", *STAGE_FEATURES)
    if start not in stages or stop not in stages[1:] or stages.index(start) > stages.index(stop):
      raise ValueError(f"MobileNetV2: start={start!r}, stop={stop!r}: expected start in {stages} and stop in "
                       f"{stages[1:]}, start before stop")
    first = 0 if start == "stem" else 1 if start == "res2" else STAGE_FEATURES[stages[stages.index(start) - 1]] + 1
    stage_at = {i: name for name, i in STAGE_FEATURES.items()}
    x, out = images, {}
    for i, (layer, args) in enumerate(_layers(self.width_mult)):
      if first <= i <= STAGE_FEATURES[stop]:
        x = layer(*args, self.dtype, name=f"features_{i}")(x, train=train)
        if i in stage_at:
          out[stage_at[i]] = x
    if self.num_classes is not None and stop == "res5":
      pooled = nn.Dropout(0.2, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
      out["logits"] = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32,
                               kernel_init=_fc_init, name="classifier_1")(pooled)
    return out


def mobilenet_v2(**kwargs) -> MobileNetV2:
  """torchvision's mobilenet_v2 (attributes: width_mult, num_classes, dtype)."""
  return MobileNetV2(**kwargs)
