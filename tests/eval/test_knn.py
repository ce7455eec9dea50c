"""jaxret.eval.knn against a brute-force float64 NumPy search written from the definition."""
import jax
import numpy as np
import pytest

from jaxret.eval import knn, pairwise, query_sharding


def reference_knn(query, gallery, k, metric, *, self_gallery=False, query_keys=None,
                  gallery_keys=None, valid=None):
  """Loops over queries: score every visible gallery item in float64, sort by (-score, index)."""
  q = np.asarray(query, np.float64)
  g = np.asarray(gallery, np.float64)
  indices = np.full((len(q), k), -1)
  scores = np.full((len(q), k), -np.inf)
  for i in range(len(q)):
    candidates = []
    for j in range(len(g)):
      if self_gallery and i == j:
        continue
      if valid is not None and not valid[j]:
        continue
      if query_keys is not None and np.all(query_keys[i] == gallery_keys[j]):
        continue
      if metric == "cosine":
        s = round(float(q[i] @ g[j] / (np.linalg.norm(q[i]) * np.linalg.norm(g[j]))), 12)
      elif metric == "euclidean":
        s = -float(np.sum((q[i] - g[j]) ** 2))
      else:
        s = -float(np.sum(q[i] != g[j]))
      candidates.append((-s, j))
    candidates.sort()
    for rank, (neg, j) in enumerate(candidates[:k]):
      indices[i, rank], scores[i, rank] = j, -neg
  return indices, scores


def tied_data(metric, rng, num_query=37, num_gallery=90):
  """Embeddings with many exact ties: small integers (euclidean) or {-1, +1} (cosine, hamming),
  a gallery holding copies of some queries and of its own items."""
  if metric == "euclidean":
    draw = lambda n: rng.integers(-2, 3, (n, 5)).astype(np.float32)
  else:
    draw = lambda n: rng.choice([-1.0, 1.0], (n, 8)).astype(np.float32)
  query = draw(num_query)
  gallery = draw(num_gallery)
  gallery[:10] = query[:10]
  gallery[50:60] = gallery[20:30]
  return query, gallery


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "hamming"])
def test_matches_reference_with_ties(metric):
  rng = np.random.default_rng(0)
  query, gallery = tied_data(metric, rng)
  result = knn.nearest_neighbours(query, gallery, k=9, metric=metric, block_size=16, query_block=8)
  indices, scores = reference_knn(query, gallery, 9, metric)
  np.testing.assert_array_equal(result.indices, indices)
  np.testing.assert_allclose(result.scores, scores, rtol=0, atol=1e-6)


def test_self_gallery_excludes_each_query():
  rng = np.random.default_rng(1)
  query, _ = tied_data("euclidean", rng)
  query[5] = query[6]  # a duplicate: the other copy must still be found at distance 0
  result = knn.nearest_neighbours(query, k=36, metric="euclidean", block_size=16, query_block=8)
  indices, scores = reference_knn(query, query, 36, "euclidean", self_gallery=True)
  np.testing.assert_array_equal(result.indices, indices)
  np.testing.assert_array_equal(result.scores, scores)
  assert result.indices[5, 0] == 6 and result.indices[6, 0] == 5
  assert not (result.indices == np.arange(len(query))[:, None]).any()


def test_exclusion_keys_and_invalid_gallery_items():
  rng = np.random.default_rng(2)
  query, gallery = tied_data("euclidean", rng)
  query_keys = np.stack([rng.integers(0, 4, len(query)), rng.integers(0, 2, len(query))], 1)
  gallery_keys = np.stack([rng.integers(0, 4, len(gallery)), rng.integers(0, 2, len(gallery))], 1)
  valid = rng.random(len(gallery)) > 0.3
  result = knn.nearest_neighbours(query, gallery, k=70, metric="euclidean", block_size=16, query_block=8,
                                  exclude_same=(query_keys, gallery_keys), gallery_valid=valid)
  indices, scores = reference_knn(query, gallery, 70, "euclidean", query_keys=query_keys,
                                  gallery_keys=gallery_keys, valid=valid)
  assert (indices == -1).any(), "the test must cover queries with fewer than k visible items"
  np.testing.assert_array_equal(result.indices, indices)
  np.testing.assert_array_equal(result.scores, scores)


def test_random_floats_cosine_matches_reference():
  rng = np.random.default_rng(3)
  query = rng.normal(size=(45, 16)).astype(np.float32)
  gallery = rng.normal(size=(70, 16)).astype(np.float32)
  result = knn.nearest_neighbours(query, gallery, k=6, block_size=32, query_block=16)
  indices, scores = reference_knn(query, gallery, 6, "cosine")
  np.testing.assert_array_equal(result.indices, indices)
  np.testing.assert_allclose(result.scores, scores, rtol=0, atol=1e-6)


def test_sharded_over_four_devices_equals_one_device_exactly():
  assert jax.device_count() == 4, "tests/conftest.py should force 4 CPU devices"
  rng = np.random.default_rng(4)
  query = rng.normal(size=(61, 24)).astype(np.float32)
  gallery = np.concatenate([rng.normal(size=(80, 24)), query[:20]]).astype(np.float32)
  one = query_sharding.data_mesh(jax.devices()[:1])
  four = query_sharding.data_mesh(jax.devices())
  for metric in ("cosine", "euclidean"):
    a = knn.nearest_neighbours(query, gallery, k=8, metric=metric, block_size=32, query_block=8, mesh=one)
    b = knn.nearest_neighbours(query, gallery, k=8, metric=metric, block_size=32, query_block=8, mesh=four)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_block_sizes_do_not_change_the_result():
  rng = np.random.default_rng(5)
  query, gallery = tied_data("cosine", rng)
  a = knn.nearest_neighbours(query, gallery, k=12, block_size=8, query_block=8)
  b = knn.nearest_neighbours(query, gallery, k=12, block_size=90, query_block=40)
  np.testing.assert_array_equal(a.indices, b.indices)
  np.testing.assert_array_equal(a.scores, b.scores)


def test_packed_and_boolean_codes_equal_sign_codes():
  rng = np.random.default_rng(6)
  query, gallery = tied_data("hamming", rng)
  a = knn.nearest_neighbours(query, gallery, k=5, metric="hamming")
  b = knn.nearest_neighbours(np.packbits(query > 0, axis=1), np.packbits(gallery > 0, axis=1), k=5,
                             metric="hamming")
  c = knn.nearest_neighbours(query > 0, gallery > 0, k=5, metric="hamming")
  for other in (b, c):
    np.testing.assert_array_equal(a.indices, other.indices)
    np.testing.assert_array_equal(a.scores, other.scores)


def test_memory_is_bounded_by_the_blocks():
  """The compiled search for 8192 x 8192 (of vectors prepared in their own program, see
  `query_sharding._prepare`) needs temporary memory for a few blocks, never Q x G scores."""
  num, dim, chunk, block = 8192, 32, 64, 256
  kernel = knn._TopK(k=8, metric="cosine", block=block)
  mesh = query_sharding.data_mesh(jax.devices()[:1])
  prepared = {"x": jax.ShapeDtypeStruct((num, dim), np.float32), "sq_norm": jax.ShapeDtypeStruct((num,), np.float32),
              "valid": jax.ShapeDtypeStruct((num,), np.bool_)}
  compiled = query_sharding._run.lower(kernel, mesh, chunk, prepared, prepared).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  assert temp < 4 * chunk * block * 16, temp  # a few [chunk, block] buffers
  assert temp < num * num * 4 / 50


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "hamming"])
def test_scores_have_no_negative_zero(metric):
  """lax.top_k orders -0.0 below +0.0; a zero score must be +0.0 so equal scores tie."""
  x = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], np.float32)
  s = np.asarray(pairwise.scores(jax.numpy.asarray(x), jax.numpy.asarray(x), metric))
  assert (s == 0).any()
  assert not np.signbit(s[s == 0]).any()


def test_errors_name_the_bad_value():
  x = np.zeros((4, 3), np.float32)
  with pytest.raises(ValueError, match="metric must be one of .* got 'dot'"):
    knn.nearest_neighbours(x, x, k=1, metric="dot")
  with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\].*got 5"):
    knn.nearest_neighbours(x, x, k=5)
  with pytest.raises(ValueError, match=r"gallery must have 3 columns .* shape \(4, 2\)"):
    knn.nearest_neighbours(x, x[:, :2], k=1)
  bad = x.copy()
  bad[2, 1] = np.nan
  with pytest.raises(ValueError, match=r"query must be finite; query\[2, 1\] = nan"):
    knn.nearest_neighbours(bad, x, k=1)
  with pytest.raises(ValueError, match=r"codes in \{-1, \+1\}"):
    knn.nearest_neighbours(x, x, k=1, metric="hamming")
  with pytest.raises(ValueError, match="exclude_same must be"):
    knn.nearest_neighbours(x, x, k=1, exclude_same=(np.zeros(4), np.zeros(3)))
  with pytest.raises(ValueError, match=r"gallery_valid must be a bool array of shape \(4,\)"):
    knn.nearest_neighbours(x, x, k=1, gallery_valid=np.ones(4))
