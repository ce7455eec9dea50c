"""Random-walk object attention (DeML Eqs. 2-3) against NumPy: the distance graph, the
row-normalised transition matrix, convergence to the stationary distribution (an eigenvector
computed by NumPy), mass on the odd region of a map, and the batched multi-layer proposal."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.ops import random_walk


def _stationary(p: np.ndarray) -> np.ndarray:
  """The left eigenvector of the row-stochastic `p` for eigenvalue 1, summing to 1."""
  values, vectors = np.linalg.eig(p.T)
  v = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
  return v / v.sum()


def test_distance_graph_and_transition_matrix_match_eq_2():
  u = np.random.default_rng(0).normal(size=(2, 6, 5)).astype(np.float32)
  want = np.linalg.norm(u[:, :, None] - u[:, None, :], axis=-1)
  d = np.asarray(random_walk.distance_graph(jnp.asarray(u)))
  np.testing.assert_allclose(d, want, atol=1e-5)
  assert np.all(np.diag(d[0]) == 0)
  p = np.asarray(random_walk.transition_matrix(jnp.asarray(d)))
  np.testing.assert_allclose(p, want / want.sum(axis=-1, keepdims=True), rtol=1e-5)


def test_walk_converges_to_the_stationary_distribution():
  u = np.random.default_rng(1).normal(size=(3, 4, 5, 8)).astype(np.float32)  # B = 3 maps of 4 x 5
  m = np.asarray(random_walk.random_walk_map(jnp.asarray(u)))  # T = 10
  assert m.shape == (3, 4, 5)
  for b in range(3):
    nodes = u[b].reshape(20, 8).astype(np.float64)
    d = np.linalg.norm(nodes[:, None] - nodes[None], axis=-1)
    want = _stationary(d / d.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(m[b].reshape(-1), want, atol=1e-6)
    assert np.ptp(want) > 0.1 / 20  # not the uniform start: the walk moved mass


def test_propagate_is_mass_flow_along_outbound_edges():
  p = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], np.float32)
  m = np.asarray(random_walk.propagate(jnp.asarray(p), jnp.full((3,), 1 / 3), steps=1))
  np.testing.assert_allclose(m, [1 / 6, 2 / 3, 1 / 6], rtol=1e-6)  # M_b = sum_a P[a, b] M_a


def test_mass_gathers_on_the_region_unlike_its_surroundings():
  rng = np.random.default_rng(2)
  # A 2 x 2 object on a textured background (a flat one makes the walk nearly bipartite:
  # object <-> background, which 10 steps do not settle).
  u = np.ones((1, 6, 6, 4), np.float32) + 0.3 * rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
  u[0, 1:3, 3:5] = -2.0
  m = np.asarray(random_walk.random_walk_map(jnp.asarray(u)))[0]
  inside = np.zeros((6, 6), bool)
  inside[1:3, 3:5] = True
  assert m[inside].min() > 3 * m[~inside].max()
  np.testing.assert_allclose(m.sum(), 1.0, rtol=1e-5)


def test_constant_map_stays_uniform():
  m = np.asarray(random_walk.random_walk_map(jnp.ones((1, 3, 3, 2))))
  np.testing.assert_allclose(m, np.full((1, 3, 3), 1 / 9), rtol=1e-6)


def test_object_attention_batches_layers_of_different_sizes():
  rng = np.random.default_rng(3)
  maps = [jnp.asarray(rng.normal(size=(2, 4, 4, 6)), jnp.float32), jnp.asarray(rng.normal(size=(2, 2, 3, 10)), jnp.float32)]
  got = np.asarray(jax.jit(lambda a, b: random_walk.object_attention([a, b], (16, 12)))(*maps))
  per_layer = [jax.image.resize(random_walk.random_walk_map(m), (2, 16, 12), "linear") for m in maps]
  np.testing.assert_allclose(got, np.mean(per_layer, axis=0), atol=1e-6)
  assert got.shape == (2, 16, 12)
