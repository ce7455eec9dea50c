"""The ranks-of-the-relevant-items kernel against the full-sort kernel it replaces (the reference)."""
import jax
import numpy as np
import pytest

from jaxret.eval import query_sharding, ranking, relevant_ranks

INTEGER_STATS = ("num_relevant", "first_rank", "last_rank", "hits_at_r", "hits_at_k")
SUM_STATS = ("ap_sum", "ap_at_r_sum", "ap_at_k_sum")


def tied_vectors(metric, rng, num, dim):
  """Vectors with many exactly equal scores: small integers, or {-1, +1} codes."""
  if metric == "hamming":
    return np.where(rng.random((num, dim)) < 0.5, -1.0, 1.0).astype(np.float32)
  return rng.integers(-2, 3, (num, dim)).astype(np.float32)


def assert_same_stats(new, reference):
  for name in INTEGER_STATS:
    if name in reference:
      np.testing.assert_array_equal(new[name], reference[name], err_msg=name)
  for name in SUM_STATS:
    if name in reference:
      np.testing.assert_allclose(new[name], reference[name], rtol=2e-6, atol=0, err_msg=name)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "hamming"])
def test_equals_full_sort_with_ties_hidden_items_and_reid_rules(metric):
  rng = np.random.default_rng(0)
  for trial in range(4):
    num_query, num_gallery, dim = 37, 211 + trial, 3 + trial
    query, gallery = tied_vectors(metric, rng, num_query, dim), tied_vectors(metric, rng, num_gallery, dim)
    query_ids = rng.integers(0, 7, num_query)   # class 6 is rare or absent in the gallery
    gallery_ids = rng.integers(-1, 6, num_gallery)
    keys = (np.stack([query_ids, rng.integers(0, 3, num_query)], 1),
            np.stack([gallery_ids, rng.integers(0, 3, num_gallery)], 1))
    args = dict(metric=metric, exclude_same=keys, gallery_valid=gallery_ids != -1, topk=5)
    new = ranking.ranking_stats(query, query_ids, gallery, gallery_ids, method="relevant_ranks", **args)
    reference = ranking.ranking_stats(query, query_ids, gallery, gallery_ids, method="full_sort", **args)
    assert (reference["num_relevant"] == 0).any() and (reference["num_relevant"] > 3).any()
    assert_same_stats(new, reference)


def test_equals_full_sort_on_float_embeddings_with_duplicates():
  """Distinct float scores (one search step), plus exact duplicates of relevant items (more)."""
  rng = np.random.default_rng(1)
  x = rng.standard_normal((300, 16)).astype(np.float32)
  x[200:260] = x[rng.integers(0, 200, 60)]
  labels = rng.integers(0, 12, 300)
  for gallery in (None, x[::-1].copy()):
    gallery_labels = None if gallery is None else labels[::-1].copy()
    new = ranking.ranking_stats(x, labels, gallery, gallery_labels, method="relevant_ranks")
    reference = ranking.ranking_stats(x, labels, gallery, gallery_labels, method="full_sort")
    assert_same_stats(new, reference)


def test_index_breaks_ties_smaller_first():
  """Equal scores rank by gallery index: a relevant item after its tied twins ranks behind them."""
  gallery = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]], np.float32)
  gallery_labels = np.array([1, 0, 1, 0, 1])
  stats = ranking.ranking_stats(np.array([[1.0, 0.0]], np.float32), np.array([1]), gallery,
                                gallery_labels, method="relevant_ranks")
  # Ranking 0, 1, 2, 3 (tied at cosine 1), then 4; relevant ranks 1, 3, 5.
  assert stats["first_rank"][0] == 1 and stats["last_rank"][0] == 5
  np.testing.assert_allclose(stats["ap_sum"], [1 / 1 + 2 / 3 + 3 / 5])
  assert stats["hits_at_r"][0] == 2


def test_sharded_over_four_devices_equals_one_device():
  rng = np.random.default_rng(2)
  x = tied_vectors("cosine", rng, 90, 4)
  labels = rng.integers(0, 5, 90)
  members, member_row = relevant_ranks.class_members(labels, labels)
  kernel = relevant_ranks.RelevantRanks(metric="cosine")
  index = np.arange(90)
  queries = {"x": x, "member_row": member_row, "keys": index[:, None]}
  gallery = {"x": x, "valid": np.ones(90, bool), "members": members, "keys": index[:, None]}
  assert len(jax.devices()) == 4
  outs = [query_sharding.map_query_chunks(kernel, queries, gallery, chunk=8, mesh=query_sharding.data_mesh(devices))
          for devices in (jax.devices()[:1], jax.devices())]
  for name in ("ranks", "num_relevant"):
    np.testing.assert_array_equal(outs[0][name], outs[1][name])


def test_class_members_lists_each_query_class_in_index_order():
  members, member_row = relevant_ranks.class_members(np.array([5, 2, 9, 5]), np.array([2, 5, 5, 7, 2]))
  # Query classes 2, 5, 9 (9 has no gallery item); padding = G = 5.
  np.testing.assert_array_equal(members, [[0, 4], [1, 2], [5, 5]])
  np.testing.assert_array_equal(member_row, [1, 0, 2, 1])


def test_stats_from_ranks_follow_the_definitions():
  ranks = np.array([[2, 3, 7, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
  stats = ranking.stats_from_ranks(ranks, np.array([3, 0, 1]), topk=3)
  np.testing.assert_array_equal(stats["first_rank"], [2, 0, 1])
  np.testing.assert_array_equal(stats["last_rank"], [7, 0, 1])
  np.testing.assert_array_equal(stats["hits_at_r"], [2, 0, 1])    # ranks <= R = 3: 2 and 3
  np.testing.assert_allclose(stats["ap_sum"], [1 / 2 + 2 / 3 + 3 / 7, 0, 1])
  np.testing.assert_allclose(stats["ap_at_r_sum"], [1 / 2 + 2 / 3, 0, 1])
  np.testing.assert_array_equal(stats["hits_at_k"], [2, 0, 1])


def test_multi_hot_labels_need_the_full_sort():
  x = np.eye(4, dtype=np.float32)
  labels = np.eye(4, dtype=np.int32)
  with pytest.raises(ValueError, match="multi-hot"):
    ranking.ranking_stats(x, labels, method="relevant_ranks")
  with pytest.raises(ValueError, match="method must be one of"):
    ranking.ranking_stats(x, labels, method="sorted")
  assert ranking.ranking_stats(x, labels)["num_relevant"].tolist() == [0, 0, 0, 0]
