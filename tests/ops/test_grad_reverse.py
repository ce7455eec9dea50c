"""Gradient reversal: identity forward, gradient times -scale backward, exactly."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.ops.grad_reverse import grad_reverse


def test_forward_is_the_identity_and_the_gradient_is_flipped_and_scaled():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)), jnp.float32)
  np.testing.assert_array_equal(grad_reverse(x, 0.5), x)
  loss = lambda x, scale: jnp.sum(w * jnp.sin(grad_reverse(x, scale)))
  plain = jax.grad(lambda x: jnp.sum(w * jnp.sin(x)))(x)
  for scale in (1.0, 0.25, 3.0):
    got = jax.jit(jax.grad(loss), static_argnums=1)(x, scale)
    np.testing.assert_array_equal(got, -scale * plain)


def test_only_the_layers_before_the_reversal_see_the_flip():
  # loss = (a * GRL(b * x))^2: d/da keeps its sign, d/db is flipped.
  def loss(params, x):
    return jnp.square(params["a"] * grad_reverse(params["b"] * x, 1.0))

  params = {"a": 2.0, "b": 3.0}
  g = jax.grad(loss)(params, 1.5)
  h = 2.0 * 3.0 * 1.5  # a * b * x
  np.testing.assert_allclose(g["a"], 2 * h * 3.0 * 1.5, rtol=1e-6)
  np.testing.assert_allclose(g["b"], -(2 * h * 2.0 * 1.5), rtol=1e-6)
