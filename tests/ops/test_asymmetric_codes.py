"""ADSH's closed-form database-code update (jaxret/ops/asymmetric_codes.py): each bit step is the
exact minimiser over its column (brute force), the sweep never increases the objective, codes end
in {-1, +1}, unknown rows stay, and the jitted sweep equals the steps applied one by one."""
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.ops import asymmetric_codes as ac

M, K = 6, 4


def _problem(seed, zero_init=False, unknown=()):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, M).astype(np.int32)
  labels[list(unknown)] = -1
  in_query = rng.random(M) < 0.6
  in_query[0] = True
  in_query[list(unknown)] = False  # an unseen image cannot be a query
  outputs = np.tanh(rng.normal(size=(M, K)) * 1.5).astype(np.float32)
  codes = np.zeros((M, K), np.float32) if zero_init else rng.choice([-1.0, 1.0], size=(M, K)).astype(np.float32)
  return codes, outputs, in_query, labels


def _objective_numpy(codes, outputs, in_query, labels, k, gamma, dissimilar=-1.0):
  total = 0.0
  for i in np.flatnonzero(in_query):
    for j in np.flatnonzero(labels >= 0):
      s = 1.0 if labels[i] == labels[j] else dissimilar
      total += (outputs[i] @ codes[j] - k * s) ** 2
    total += gamma * np.sum((codes[i] - outputs[i]) ** 2)
  return total


def _step_inputs(codes, outputs, in_query, labels, gamma, dissimilar=-1.0):
  u = np.where(in_query[:, None], outputs, 0.0)
  st_u = np.asarray(ac.similarity_transpose_times(jnp.asarray(outputs), jnp.asarray(in_query),
                                                  jnp.asarray(labels), 3, dissimilar))
  q = -2.0 * K * st_u - 2.0 * gamma * u
  return jnp.asarray(u.T @ u, jnp.float32), jnp.asarray(q, jnp.float32), jnp.asarray(labels >= 0)


@pytest.mark.parametrize("dissimilar", [-1.0, -0.2])
def test_similarity_transpose_times_is_s_transpose_u(dissimilar):
  codes, outputs, in_query, labels = _problem(0, unknown=(4,))
  s = np.where(labels[:, None] == labels[None, :], 1.0, dissimilar)  # [i, j]
  u = np.where(in_query[:, None], outputs, 0.0)
  want = np.where(labels[:, None] >= 0, s.T @ u, 0.0)
  got = ac.similarity_transpose_times(jnp.asarray(outputs), jnp.asarray(in_query), jnp.asarray(labels), 3,
                                      dissimilar)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_code_objective_matches_its_definition():
  codes, outputs, in_query, labels = _problem(1, unknown=(2,))
  got = ac.code_objective(*map(jnp.asarray, (codes, outputs, in_query, labels)), float(K), 3.0)
  np.testing.assert_allclose(float(got), _objective_numpy(codes, outputs, in_query, labels, K, 3.0), rtol=1e-5)


@pytest.mark.parametrize("gamma,dissimilar", [(0.0, -1.0), (200.0, -1.0), (0.0, -0.25)])
def test_each_bit_step_is_the_best_column_by_brute_force(gamma, dissimilar):
  codes, outputs, in_query, labels = _problem(2)
  gram, q, known = _step_inputs(codes, outputs, in_query, labels, gamma, dissimilar)
  for bit in range(K):
    new = np.asarray(ac.update_code_bit(jnp.asarray(codes), bit, gram, q, known))
    best = np.inf
    for column in itertools.product([-1.0, 1.0], repeat=M):
      candidate = codes.copy()
      candidate[:, bit] = column
      best = min(best, _objective_numpy(candidate, outputs, in_query, labels, K, gamma, dissimilar))
    got = _objective_numpy(new, outputs, in_query, labels, K, gamma, dissimilar)
    np.testing.assert_allclose(got, best, rtol=1e-6)
    codes = new


@pytest.mark.parametrize("seed,gamma,zero_init", [(3, 0.0, False), (4, 200.0, False), (5, 0.0, True), (6, 5.0, True)])
def test_the_sweep_never_increases_the_objective(seed, gamma, zero_init):
  codes, outputs, in_query, labels = _problem(seed, zero_init=zero_init, unknown=(5,))
  gram, q, known = _step_inputs(codes, outputs, in_query, labels, gamma)
  values = [_objective_numpy(codes, outputs, in_query, labels, K, gamma)]
  z = jnp.asarray(codes)
  for bit in range(K):
    z = ac.update_code_bit(z, bit, gram, q, known)
    values.append(_objective_numpy(np.asarray(z), outputs, in_query, labels, K, gamma))
  assert all(b <= a + 1e-6 * abs(a) for a, b in zip(values, values[1:])), values
  swept = ac.update_database_codes(*map(jnp.asarray, (codes, outputs, in_query, labels)),
                                   jnp.float32(K), jnp.float32(gamma), num_classes=3)
  np.testing.assert_array_equal(np.asarray(swept), np.asarray(z))  # the jitted sweep = the steps in order
  swept = np.asarray(swept)
  assert set(np.unique(swept[labels >= 0])) <= {-1.0, 1.0}
  np.testing.assert_array_equal(swept[5], codes[5])  # the unseen row is left as it was
  assert values[-1] < values[0] or not zero_init  # from Z = 0 the first sweep must improve
