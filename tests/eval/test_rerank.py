"""k-reciprocal re-ranking against a NumPy transcription of the published `re_ranking` (the code
torchreid and fast-reid ship), on random data with exact ties."""
import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import rerank
from tests.eval.test_reid import market_like, reference_reid


def published_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
  """Zhong et al.'s re_ranking, line by line; only `np.argsort` is made stable (the original's
  quicksort leaves the order of ties unspecified; jaxret breaks them by index)."""
  original_dist = np.concatenate(
      [np.concatenate([q_q_dist, q_g_dist], axis=1),
       np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
  original_dist = np.power(original_dist, 2).astype(np.float32)
  original_dist = np.transpose(1. * original_dist / np.max(original_dist, axis=0))
  V = np.zeros_like(original_dist).astype(np.float32)
  initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
  query_num = q_g_dist.shape[0]
  gallery_num = q_g_dist.shape[0] + q_g_dist.shape[1]
  all_num = gallery_num
  for i in range(all_num):
    forward_k_neigh_index = initial_rank[i, :k1 + 1]
    backward_k_neigh_index = initial_rank[forward_k_neigh_index, :k1 + 1]
    fi = np.where(backward_k_neigh_index == i)[0]
    k_reciprocal_index = forward_k_neigh_index[fi]
    k_reciprocal_expansion_index = k_reciprocal_index
    for j in range(len(k_reciprocal_index)):
      candidate = k_reciprocal_index[j]
      candidate_forward_k_neigh_index = initial_rank[candidate, :int(np.around(k1 / 2.)) + 1]
      candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index, :int(np.around(k1 / 2.)) + 1]
      fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
      candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
      if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > 2. / 3 * len(
          candidate_k_reciprocal_index):
        k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
    k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
    weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
    V[i, k_reciprocal_expansion_index] = 1. * weight / np.sum(weight)
  original_dist = original_dist[:query_num, ]
  if k2 != 1:
    V_qe = np.zeros_like(V, dtype=np.float32)
    for i in range(all_num):
      V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
    V = V_qe
  invIndex = []
  for i in range(gallery_num):
    invIndex.append(np.where(V[:, i] != 0)[0])
  jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
  for i in range(query_num):
    temp_min = np.zeros(shape=[1, gallery_num], dtype=np.float32)
    indNonZero = np.where(V[i, :] != 0)[0]
    indImages = [invIndex[ind] for ind in indNonZero]
    for j in range(len(indNonZero)):
      temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(V[i, indNonZero[j]],
                                                                         V[indImages[j], indNonZero[j]])
    jaccard_dist[i] = 1 - temp_min / (2. - temp_min)
  final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
  return final_dist[:query_num, query_num:]


def euclidean(a, b):
  return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))


def tied_points(n, seed):
  """Small integer vectors: exact distances, many ties, some duplicate points."""
  return np.random.default_rng(seed).integers(-2, 3, size=(n, 4)).astype(np.float32)


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (7, 1, 0.5), (5, 3, 0.0)])
def test_reranked_distances_equal_the_published_code(k1, k2, lam):
  query, gallery = tied_points(23, seed=0), tied_points(50, seed=1)
  want = published_re_ranking(euclidean(query, gallery), euclidean(query, query), euclidean(gallery, gallery),
                              k1=k1, k2=k2, lambda_value=lam)
  got = rerank.reranked_distances(query, gallery, k1=k1, k2=k2, lam=lam)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_cosine_reranking_is_the_euclidean_one_of_unit_vectors():
  rng = np.random.default_rng(2)
  # {-1, +1} codes times powers of two: exact unit vectors and cosines, collinear points tie.
  query, gallery = (rng.choice([-1.0, 1.0], (n, 4)) * 2.0 ** rng.integers(-2, 3, (n, 1)) for n in (15, 40))
  unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  want = published_re_ranking(euclidean(unit(query), unit(gallery)), euclidean(unit(query), unit(query)),
                              euclidean(unit(gallery), unit(gallery)))
  np.testing.assert_allclose(rerank.reranked_distances(query, gallery, metric="cosine"), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_reid_metrics_rank_by_the_reranked_distances(metric):
  query, query_ids, query_cams, gallery, gallery_ids, gallery_cams = data = market_like(
      np.random.default_rng(0), metric)
  unit = (lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)) if metric == "cosine" else (lambda x: x)
  q, g = unit(query.astype(np.float64)), unit(gallery.astype(np.float64))
  reranked = published_re_ranking(euclidean(q, g), euclidean(q, q), euclidean(g, g))
  want = reference_reid(*data, distances=reranked)
  got = jaxret.eval.reid_metrics(*data, metric=metric, rerank=rerank.Settings())
  plain = jaxret.eval.reid_metrics(*data, metric=metric)
  assert got == pytest.approx(want, abs=1e-6)
  assert got["map"] != pytest.approx(plain["map"], abs=1e-3)  # re-ranking changed the ranking
