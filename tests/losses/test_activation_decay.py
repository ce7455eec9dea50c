"""Activation decay and L_ntri (DeML Eq. 6) against the literal NumPy formulas."""
import jax.numpy as jnp
import numpy as np

from jaxret.losses.activation_decay import activation_decay, orthonormality_penalty


def test_activation_decay_is_the_mean_half_squared_norm():
  learners = np.random.default_rng(0).normal(size=(5, 6, 3))  # N = 5 images, I J = 6 learners
  want = 0.014 / (2 * 6 * 5) * sum(np.linalg.norm(learners[n, l]) ** 2 for n in range(5) for l in range(6))
  np.testing.assert_allclose(activation_decay(jnp.asarray(learners, jnp.float32)), want, rtol=1e-5)


def test_ntri_is_the_trace_of_the_hadamard_square():
  kernels = np.random.default_rng(1).normal(size=(4, 7, 3)) * 0.5  # I J = 4 learners, d1 = 7, d/(IJ) = 3
  want = 0.0
  for kernel in kernels:
    w = kernel.T  # w_ij [d/(IJ), d1]
    a = w @ w.T - np.eye(3)
    want += 0.25 * np.trace(a * a)  # tr[(w w^T - I) (.) (w w^T - I)]
  np.testing.assert_allclose(orthonormality_penalty(jnp.asarray(kernels, jnp.float32)), want, rtol=1e-5)
  # Zero for unit-norm rows, whatever their angles (only the diagonal enters the trace).
  rows = np.random.default_rng(2).normal(size=(2, 7, 3))
  rows /= np.linalg.norm(rows, axis=1, keepdims=True)
  np.testing.assert_allclose(orthonormality_penalty(jnp.asarray(rows, jnp.float32)), 0.0, atol=1e-5)
