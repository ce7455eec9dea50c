"""Convolutions written as matrix products where XLA:CPU's convolutions are slow.

XLA's algebraic simplifier swaps a convolution's operands when the kernel covers more positions
than the input (a 3 x 3 kernel on a 2 x 2 map: ResNet's last stage at 64 px, or its gradient for
a stride-2 conv onto 2 x 2). The swapped convolution (batch and features exchanged, the kernel
reversed) falls off XLA:CPU's XNNPACK path onto a generic loop: on the 2-core CPU one such
3 x 3 x 512 conv at batch 32 takes ~5 s forward and backward instead of ~0.07 s as a matrix
product. Here such convolutions are written as the same arithmetic with patches: the 2-D
padded input is sliced into kh x kw shifted windows, concatenated on features, and multiplied by
the kernel reshaped to [kh * kw * C, O]. This rewrite applies on every backend.

On CPU, 1 x 1 convolutions (half of ResNet-50's FLOPs) are also written as products
[B * H' * W', C] @ [C, O] of the (strided) input: XLA:CPU runs their forward and gradients as
dots ~1.6x faster than as convolutions (BENCHMARKS.md). Depthwise convolutions (one filter per
channel, `feature_group_count` = C, MobileNetV2's 3 x 3 layers) are written on CPU as the sum of
the kh x kw shifted windows times their per-channel weights (`depthwise_shifted_conv`): XLA:CPU's
grouped convolution ran a 3 x 3 depthwise layer (batch 32, 32 x 32 x 144) in 107 ms forward and
255 ms forward + backward, the shifted sum in 5 and 73 ms. Everything else goes to
`lax.conv_general_dilated`.
"""
import jax
import jax.numpy as jnp
from jax import lax

_NHWC_HWIO = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))


def _as_matmul(lhs: jax.Array, rhs: jax.Array, strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
               feature_group_count: int) -> bool:
  """A plain 2-D NHWC conv that is 1 x 1 without padding (on CPU) or whose input or output map is
  smaller than its kernel in some dimension."""
  plain = (lhs.ndim == 4 and dimension_numbers == _NHWC_HWIO and feature_group_count == 1
           and all(d == 1 for d in (lhs_dilation or (1, 1)))
           and all(d == 1 for d in (rhs_dilation or (1, 1))))
  if not plain:
    return False
  kernel = rhs.shape[:2]
  if kernel == (1, 1):
    return jax.default_backend() == "cpu" and all(tuple(p) == (0, 0) for p in padding)
  outputs = [(lhs.shape[1 + i] + sum(padding[i]) - kernel[i]) // strides[i] + 1 for i in range(2)]
  return any(lhs.shape[1 + i] < kernel[i] or outputs[i] < kernel[i] for i in range(2))


def _as_depthwise(lhs: jax.Array, rhs: jax.Array, lhs_dilation, rhs_dilation, dimension_numbers,
                  feature_group_count: int) -> bool:
  """A 2-D NHWC depthwise conv (kernel [kh, kw, 1, C], C groups) on CPU."""
  return (jax.default_backend() == "cpu" and lhs.ndim == 4 and dimension_numbers == _NHWC_HWIO
          and feature_group_count > 1 and rhs.shape[2] == 1 and rhs.shape[3] == lhs.shape[3] == feature_group_count
          and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1))))


def depthwise_shifted_conv(lhs: jax.Array, rhs: jax.Array, strides, padding) -> jax.Array:
  """The depthwise convolution of `lhs` [B, H, W, C] with `rhs` [kh, kw, 1, C] as a sum of
  kh x kw shifted (strided) windows of the padded input, each times its channels' weights.

  Returns [B, H', W', C] with H' = (H + pad_h - kh) // stride_h + 1 (likewise W').
  """
  kh, kw = rhs.shape[:2]
  padded = jnp.pad(lhs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  ho = (padded.shape[1] - kh) // strides[0] + 1
  wo = (padded.shape[2] - kw) // strides[1] + 1
  out = None
  for i in range(kh):  # kh * kw windows, unrolled at trace time (9 for MobileNetV2)
    for j in range(kw):
      window = padded[:, i:i + strides[0] * (ho - 1) + 1:strides[0], j:j + strides[1] * (wo - 1) + 1:strides[1]]
      term = window * rhs[i, j, 0]
      out = term if out is None else out + term
  return out


def patches_conv(lhs: jax.Array, rhs: jax.Array, strides, padding, precision=None) -> jax.Array:
  """The convolution of `lhs` [B, H, W, C] with `rhs` [kh, kw, C, O] as one matrix product.

  Returns [B, H', W', O] with H' = (H + pad_h - kh) // stride_h + 1 (likewise W').
  """
  kh, kw, c, o = rhs.shape
  padded = jnp.pad(lhs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  ho = (padded.shape[1] - kh) // strides[0] + 1
  wo = (padded.shape[2] - kw) // strides[1] + 1
  windows = [padded[:, i:i + strides[0] * (ho - 1) + 1:strides[0], j:j + strides[1] * (wo - 1) + 1:strides[1]]
             for i in range(kh) for j in range(kw)]
  return jnp.matmul(jnp.concatenate(windows, axis=-1), rhs.reshape(kh * kw * c, o), precision=precision)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """`lax.conv_general_dilated` (the signature `flax.linen.Conv` calls), through `patches_conv`
  or `depthwise_shifted_conv` for the NHWC convs named in the module docstring."""
  dimension_numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  if isinstance(padding, str) and dimension_numbers == _NHWC_HWIO:  # "SAME" / "VALID" as explicit pairs
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  if _as_matmul(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                feature_group_count):
    return patches_conv(lhs, rhs, window_strides, padding, precision)
  if _as_depthwise(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count):
    return depthwise_shifted_conv(lhs, rhs, window_strides, padding)
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                  feature_group_count, precision=precision, **kwargs)
