"""The shifted-window max pool equals flax's max pool bit for bit, values and gradients, on maps
full of ties (where the gradient must go to the first maximum of each window only)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.backbones import shifted_max_pool


@pytest.mark.parametrize("shape, window, strides, padding", [
    ((2, 9, 9, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's stem pool, odd map
    ((2, 8, 7, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # even / odd sides
    ((1, 6, 6, 2), (2, 3), (1, 2), ((0, 1), (1, 0))),  # uneven window, strides, padding
])
def test_values_and_gradients_equal_flax_with_ties(shape, window, strides, padding):
  # Post-ReLU integers: most windows hold several equal maxima (zeros and small integers).
  x = jnp.maximum(jnp.round(jax.random.normal(jax.random.key(0), shape) * 1.5), 0.0)
  dy = jax.random.normal(jax.random.key(1), nn.max_pool(x, window, strides, padding).shape)

  def value_and_grad(pool):
    y, vjp = jax.vjp(lambda v: pool(v, window, strides, padding), x)
    return y, vjp(dy)[0]

  y, dx = value_and_grad(shifted_max_pool.shifted_max_pool)
  y_ref, dx_ref = value_and_grad(lambda v, w, s, p: nn.max_pool(v, w, strides=s, padding=p))
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_array_equal(dx, dx_ref)
  # Each window sends its gradient to one input: the gradient's total is dy's total.
  np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-5)


def test_too_large_a_window_is_refused():
  with pytest.raises(ValueError, match=r"window \(12, 12\) has more than 127 positions"):
    shifted_max_pool.shifted_max_pool(jnp.zeros((1, 12, 12, 1)), (12, 12), (1, 1), ((0, 0), (0, 0)))
