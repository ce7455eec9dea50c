"""The matrix-product and shifted-window depthwise convolutions equal lax.conv_general_dilated,
values and gradients, and are used exactly where the map is smaller than the kernel, or (on CPU)
the kernel is 1 x 1 or the conv is depthwise."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxret.backbones import matmul_conv

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((3, 2, 2, 5), 3, 1, ((1, 1), (1, 1))),   # ResNet-18 res5 at 64 px
    ((3, 4, 4, 5), 3, 2, ((1, 1), (1, 1))),   # the stride-2 conv onto a 2 x 2 map
    ((2, 3, 1, 4), 3, (1, 2), "SAME"),        # a 3 x 1 map, uneven strides, padding by name
    ((2, 5, 5, 4), 1, 2, ((0, 0), (0, 0))),   # ResNet's strided 1 x 1 downsample
])
def test_values_and_gradients_match_lax(shape, kernel, stride, padding):
  strides = (stride, stride) if isinstance(stride, int) else stride
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (kernel, kernel, shape[-1], 6))

  def loss(conv, x, w):
    y = conv(x, w, strides, padding, dimension_numbers=NHWC)
    return jnp.sum(jnp.sin(y)), y

  (_, want), want_grads = jax.value_and_grad(lambda x, w: loss(lax.conv_general_dilated, x, w), (0, 1),
                                             has_aux=True)(x, w)
  (_, got), got_grads = jax.value_and_grad(lambda x, w: loss(matmul_conv.conv_general_dilated, x, w), (0, 1),
                                           has_aux=True)(x, w)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  for g, h in zip(got_grads, want_grads):
    np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape, stride, padding", [
    ((2, 6, 5, 4), 1, ((1, 1), (1, 1))),    # MobileNetV2's 3 x 3 depthwise layer, odd width
    ((2, 7, 6, 4), 2, ((1, 1), (1, 1))),    # its stride-2 layer, odd height
    ((2, 5, 5, 4), (2, 1), ((0, 1), (2, 0))),  # uneven strides and padding
])
def test_depthwise_values_and_gradients_match_lax(shape, stride, padding):
  strides = (stride, stride) if isinstance(stride, int) else stride
  c = shape[-1]
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (3, 3, 1, c))

  def loss(conv, x, w):
    y = conv(x, w, strides, padding, dimension_numbers=NHWC, feature_group_count=c)
    return jnp.sum(jnp.sin(y)), y

  (_, want), want_grads = jax.value_and_grad(lambda x, w: loss(lax.conv_general_dilated, x, w), (0, 1),
                                             has_aux=True)(x, w)
  (_, got), got_grads = jax.value_and_grad(lambda x, w: loss(matmul_conv.conv_general_dilated, x, w), (0, 1),
                                           has_aux=True)(x, w)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  for g, h in zip(got_grads, want_grads):
    np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-4)


def test_depthwise_convs_become_shifted_sums_and_grouped_ones_stay_convolutions():
  depthwise = lambda x: matmul_conv.conv_general_dilated(x, jnp.ones((3, 3, 1, 4)), (1, 1), ((1, 1), (1, 1)),
                                                         dimension_numbers=NHWC, feature_group_count=4)
  assert jax.default_backend() == "cpu" and not _has_convolution(depthwise, jnp.ones((1, 5, 5, 4)))
  grouped = lambda x: matmul_conv.conv_general_dilated(x, jnp.ones((3, 3, 2, 4)), (1, 1), ((1, 1), (1, 1)),
                                                       dimension_numbers=NHWC, feature_group_count=2)
  assert _has_convolution(grouped, jnp.ones((1, 5, 5, 4)))


def _has_convolution(fn, *args) -> bool:
  return "convolution" in jax.jit(fn).lower(*args).as_text(dialect="hlo")


def test_small_maps_and_1x1_kernels_become_matrix_products_and_the_rest_stay_convolutions():
  w = jnp.ones((3, 3, 4, 4))
  conv = lambda x: matmul_conv.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=NHWC)
  assert not _has_convolution(conv, jnp.ones((1, 2, 2, 4)))
  assert _has_convolution(conv, jnp.ones((1, 3, 3, 4)))
  one_by_one = lambda x: matmul_conv.conv_general_dilated(x, jnp.ones((1, 1, 4, 4)), (2, 2), ((0, 0), (0, 0)),
                                                          dimension_numbers=NHWC)
  assert jax.default_backend() == "cpu" and not _has_convolution(one_by_one, jnp.ones((1, 5, 5, 4)))


def test_flax_conv_with_it_keeps_its_parameters():
  x = jnp.ones((2, 2, 2, 3))
  plain = nn.Conv(5, (3, 3), padding=((1, 1), (1, 1)))
  small = nn.Conv(5, (3, 3), padding=((1, 1), (1, 1)), conv_general_dilated=matmul_conv.conv_general_dilated)
  params = plain.init(jax.random.key(0), x)
  np.testing.assert_allclose(small.apply(params, x), plain.apply(params, x), rtol=1e-5, atol=1e-5)
