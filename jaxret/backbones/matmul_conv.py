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
dots ~1.6x faster than as convolutions (BENCHMARKS.md). Everything else goes to
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
  for the plain NHWC convs named in the module docstring."""
  dimension_numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  if isinstance(padding, str) and dimension_numbers == _NHWC_HWIO:  # "SAME" / "VALID" as explicit pairs
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  if _as_matmul(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                feature_group_count):
    return patches_conv(lhs, rhs, window_strides, padding, precision)
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                  feature_group_count, precision=precision, **kwargs)
