"""Binomial deviance (DeML Eq. 5) against a pair-by-pair NumPy transcription."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.losses.binomial_deviance import binomial_deviance


def _eq5(x, labels, alpha=2.0, beta=0.5, costs=(1.0, 35.0)):
  """sum_{p != q} (1 / w_pq) log(1 + exp(-(2 s_pq - 1) alpha (D_pq - beta) gamma_pq))."""
  n = len(labels)
  s = (labels[:, None] == labels[None, :]).astype(np.float64)
  off = ~np.eye(n, dtype=bool)
  w = {1.0: np.sum(s[off] == 1), 0.0: np.sum(s[off] == 0)}
  total = 0.0
  for p in range(n):
    for q in range(n):
      if p == q:
        continue
      d = x[p] @ x[q] / (np.linalg.norm(x[p]) * np.linalg.norm(x[q]))
      gamma = costs[0] if s[p, q] else costs[1]
      total += np.log1p(np.exp(-(2 * s[p, q] - 1) * alpha * (d - beta) * gamma)) / w[s[p, q]]
  return total


def test_matches_eq_5():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 5))
  labels = np.array([0, 0, 1, 1, 1, 2, 3, 3])
  got = jax.jit(binomial_deviance)(jnp.asarray(x, jnp.float32), jnp.asarray(labels))
  np.testing.assert_allclose(got, _eq5(x, labels), rtol=1e-5)
  got = binomial_deviance(jnp.asarray(x, jnp.float32), jnp.asarray(labels), 3.0, 0.2, 2.0, 10.0)
  np.testing.assert_allclose(got, _eq5(x, labels, 3.0, 0.2, (2.0, 10.0)), rtol=1e-5)


def test_batch_without_positive_pairs_has_only_the_negative_term():
  x = np.random.default_rng(1).normal(size=(4, 3))
  labels = np.arange(4)
  np.testing.assert_allclose(binomial_deviance(jnp.asarray(x, jnp.float32), jnp.asarray(labels)),
                             _eq5(x, labels), rtol=1e-5)


def test_gradient_pulls_positives_together_and_pushes_negatives_apart():
  x = jnp.asarray([[1.0, 0.2], [0.2, 1.0], [1.0, 0.1]])
  labels = jnp.asarray([0, 0, 1])
  step = x - 0.01 * jax.grad(binomial_deviance)(x, labels)
  cos = lambda v, a, b: float(v[a] @ v[b] / (jnp.linalg.norm(v[a]) * jnp.linalg.norm(v[b])))
  assert cos(step, 0, 1) > cos(x, 0, 1)  # positive pair
  assert cos(step, 0, 2) < cos(x, 0, 2)  # negative pair
