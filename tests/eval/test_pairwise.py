"""jaxret.eval.pairwise cosine scores: exact ties wherever the cosines are equal and the entries
are small integers (collinear vectors of any norm, {-1, +1} codes at equal Hamming distance), the
values of the float64 definition, and no overflow at large norms."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.eval import pairwise

cosine_scores = jax.jit(lambda q, g: pairwise.scores(q, g, "cosine"))


def reference_cosine(q, g):
  q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
  norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None, :]
  return np.divide(q @ g.T, norms, out=np.zeros(norms.shape), where=norms > 0)


def test_collinear_integer_vectors_tie_exactly():
  # Issue 18: q.g / (|q| |g|) scored these 1.0 and 1.0000001.
  s = np.asarray(cosine_scores(jnp.asarray([[1.0, 1.0, 0.0]]), jnp.asarray([[5.0, 5.0, 0.0], [1.0, 1.0, 0.0]])))
  assert s[0, 0] == s[0, 1] == 1.0
  rng = np.random.default_rng(0)
  queries = rng.integers(-3, 4, (6, 5)).astype(np.float32)
  for _ in range(10):  # the multiples 1..9 of a base: every query scores them all alike
    base = rng.integers(-3, 4, (1, 5)).astype(np.float32)
    base[0, 0] = 1.0
    gallery = np.arange(1, 10, dtype=np.float32)[:, None] * base
    s = np.asarray(cosine_scores(jnp.asarray(queries), jnp.asarray(gallery)))
    np.testing.assert_array_equal(s, np.repeat(s[:, :1], 9, axis=1))
    np.testing.assert_allclose(s, reference_cosine(queries, gallery), rtol=0, atol=2e-7)


def test_codes_at_equal_hamming_distance_tie_exactly():
  rng = np.random.default_rng(1)
  for bits in (8, 12, 48):
    q, g = (rng.choice([-1.0, 1.0], (n, bits)).astype(np.float32) for n in (20, 200))
    s, dot = np.asarray(cosine_scores(jnp.asarray(q), jnp.asarray(g))), q @ g.T
    for i in range(len(q)):
      for value in np.unique(dot[i]):
        assert len(np.unique(s[i][dot[i] == value])) == 1, (bits, i, value)
    np.testing.assert_allclose(s, dot / bits, rtol=0, atol=2e-7)


def test_float_values_zero_vectors_and_large_norms():
  rng = np.random.default_rng(2)
  q = rng.normal(size=(7, 16)).astype(np.float32)
  g = rng.normal(size=(9, 16)).astype(np.float32)
  g[3] = 0.0
  want = reference_cosine(q, g)
  for scale in (1.0, 1e25, 1e-25):  # |q| |g| beyond float32's range at 1e25, below it at 1e-25
    s = np.asarray(cosine_scores(jnp.asarray(q * scale), jnp.asarray(g * scale)))
    np.testing.assert_allclose(s, want, rtol=0, atol=1e-6)
    assert (s[:, 3] == 0).all() and not np.signbit(s[:, 3]).any()
