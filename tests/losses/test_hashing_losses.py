"""A2-Net's loss terms (jaxret/losses/hashing.py) against a NumPy transcription of Eq. 13 written
in the paper's column layout (X `[d, n]`, V' `[k, n]`, W `[k, d]`) on small random inputs."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.losses import hashing

N, D, K, M = 5, 7, 4, 9  # batch n, feature d, bits k, database m


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(N, D))
  w = rng.normal(size=(K, D)) * 0.3
  codes = np.tanh(x @ w.T)
  labels = rng.integers(0, 3, N)
  db_codes = rng.choice([-1.0, 1.0], size=(M, K))
  db_codes[2] = 0.0  # a row not yet assigned
  db_labels = rng.integers(0, 3, M)
  db_labels[[1, 6]] = -1  # rows the training stream has not shown yet
  return x, w, codes, labels, db_codes, db_labels


def _eq13_numpy(x, w, codes, labels, db_codes, db_labels, lam, alpha, beta):
  """Eq. 13 term by term, columns as examples, the double sum over (i, j) as loops."""
  X, V = x.T, codes.T  # [d, n], [k, n]
  n = X.shape[1]
  reconstruction = np.sum((X - w.T @ V) ** 2) + lam * np.sum((w @ X - V) ** 2)
  decorrelation = np.sum((V @ V.T - n * np.eye(w.shape[0])) ** 2)
  asymmetric = 0.0
  for i in range(n):
    for j in range(len(db_codes)):
      if db_labels[j] < 0:
        continue
      s = 1.0 if labels[i] == db_labels[j] else -1.0
      asymmetric += (np.tanh(w @ X[:, i]) @ db_codes[j] - w.shape[0] * s) ** 2
  return reconstruction, decorrelation, asymmetric, reconstruction + alpha * decorrelation + beta * asymmetric


def test_each_term_and_the_objective_match_eq13():
  x, w, codes, labels, db_codes, db_labels = _inputs()
  lam, alpha, beta = 1.0, 1.0 / (N * K), 12.0 / K
  ref = _eq13_numpy(x, w, codes, labels, db_codes, db_labels, lam, alpha, beta)
  j = lambda a: jnp.asarray(a, jnp.float32)
  reconstruction = hashing.attribute_guided_reconstruction(j(x), j(w), j(codes), lam)
  decorrelation = hashing.decorrelation_error(j(codes))
  asymmetric = hashing.asymmetric_error(j(codes), jnp.asarray(labels), j(db_codes), jnp.asarray(db_labels), K)
  for got, want in zip((reconstruction, decorrelation, asymmetric), ref[:3]):
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
  objective = hashing.a2net_objective(reconstruction, decorrelation, asymmetric, alpha, beta)
  np.testing.assert_allclose(float(objective), ref[3], rtol=1e-5)


def test_lambda_weighs_only_the_encoding_term():
  x, w, codes, *_ = _inputs(1)
  j = lambda a: jnp.asarray(a, jnp.float32)
  decoder = np.sum((x.T - w.T @ codes.T) ** 2)
  encoder = np.sum((w @ x.T - codes.T) ** 2)
  np.testing.assert_allclose(float(hashing.reconstruction_error(j(x), j(w), j(codes))), decoder, rtol=1e-5)
  np.testing.assert_allclose(float(hashing.encoding_error(j(x), j(w), j(codes))), encoder, rtol=1e-5)
  np.testing.assert_allclose(float(hashing.attribute_guided_reconstruction(j(x), j(w), j(codes), 0.25)),
                             decoder + 0.25 * encoder, rtol=1e-5)


def test_decorrelation_is_zero_for_orthogonal_bits_and_positive_otherwise():
  # 4 examples, 2 bits: columns (1, 1, -1, -1) and (1, -1, 1, -1) are orthogonal, V'V'^T = 4 I.
  orthogonal = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
  assert float(hashing.decorrelation_error(orthogonal)) == 0.0
  copied = orthogonal.at[:, 1].set(orthogonal[:, 0])  # identical bits: off-diagonal 4, twice
  assert float(hashing.decorrelation_error(copied)) == 32.0


def test_asymmetric_term_is_zero_when_codes_reproduce_k_times_s():
  # Equal codes for the same class, opposite for the other: u^T z = k S exactly.
  code = np.array([1.0, -1.0, 1.0])
  codes = jnp.asarray([code, -code])
  db_codes = jnp.asarray([code, -code, code])
  value = hashing.asymmetric_error(codes, jnp.array([0, 1]), db_codes, jnp.array([0, 1, 0]), 3)
  assert float(value) == 0.0
  flipped = hashing.asymmetric_error(codes, jnp.array([1, 1]), db_codes, jnp.array([0, 1, 0]), 3)
  # Row 0 now in class 1: u^T z = +-3 against k S = -+3 for all 3 database items.
  assert float(flipped) == 3 * (2 * 3) ** 2


def test_quantization_error_is_the_squared_distance_to_the_own_codes():
  codes = jnp.array([[0.5, -0.5], [0.0, 1.0]])
  own = jnp.array([[1.0, -1.0], [1.0, 1.0]])
  assert float(hashing.quantization_error(codes, own)) == 0.25 + 0.25 + 1.0


def test_balanced_dissimilarity_is_minus_similar_over_dissimilar_pairs():
  labels = np.array([0, 1, 1, 2, 0])
  database_labels = np.array([0, 0, 1, -1, 2, 2, 2, 3])
  query_mask = np.array([True, True, False, True, True])
  similar = dissimilar = 0
  for i in np.flatnonzero(query_mask):
    for j in np.flatnonzero(database_labels >= 0):
      similar += labels[i] == database_labels[j]
      dissimilar += labels[i] != database_labels[j]
  got = hashing.balanced_dissimilarity(jnp.asarray(labels), jnp.asarray(database_labels), 4, jnp.asarray(query_mask))
  np.testing.assert_allclose(float(got), -similar / dissimilar, rtol=1e-6)
  everyone = hashing.balanced_dissimilarity(jnp.asarray(labels), jnp.asarray(database_labels), 4)
  assert float(everyone) != pytest.approx(float(got))  # the mask matters
  s = np.asarray(hashing.pairwise_similarity(jnp.asarray(labels), jnp.asarray(database_labels), float(got)))
  assert set(np.unique(s)) == {1.0, float(got)}
