"""Average query expansion against a NumPy transcription of fast-reid's `aqe`."""
import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import query_expansion


def fastreid_aqe(query_feat, gallery_feat, qe_times=1, qe_k=10, alpha=3.0):
  """fast-reid's aqe (evaluation/query_expansion.py) in NumPy; its `np.argpartition` (ties in an
  unspecified order) made a stable sort (ties to the smaller index)."""
  num_query = query_feat.shape[0]
  all_feat = np.concatenate((query_feat, gallery_feat), axis=0)
  norm_feat = all_feat / np.linalg.norm(all_feat, axis=1, keepdims=True)
  for _ in range(qe_times):
    all_feat_list = []
    sims = norm_feat @ norm_feat.T
    for sim in sims:
      init_rank = np.argsort(-sim, kind="stable")
      weights = sim[init_rank[:qe_k]].reshape((-1, 1))
      weights = np.power(weights, alpha)
      all_feat_list.append(np.mean(all_feat[init_rank[:qe_k], :] * weights, axis=0))
    all_feat = np.stack(all_feat_list, axis=0)
    norm_feat = all_feat / np.linalg.norm(all_feat, axis=1, keepdims=True)
  return all_feat[:num_query], all_feat[num_query:]


def test_equals_fastreid_on_tied_codes():
  rng = np.random.default_rng(0)
  # {-1, +1} codes times powers of two: exact cosines (k / 4), many ties, negative ones among the top k.
  query, gallery = (rng.choice([-1.0, 1.0], (n, 4)).astype(np.float32) * 2.0 ** rng.integers(-2, 3, (n, 1))
                    for n in (9, 14))
  for k, alpha in ((10, 3.0), (4, 1.0), (23, 3.0)):
    want = fastreid_aqe(query, gallery, qe_k=k, alpha=alpha)
    got = query_expansion.expanded(query, gallery, query_expansion.Settings(k=k, alpha=alpha))
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


def test_two_rounds_on_random_embeddings():
  rng = np.random.default_rng(1)
  query, gallery = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
  want = fastreid_aqe(query, gallery, qe_times=2, qe_k=5)
  got = query_expansion.expanded(query, gallery, query_expansion.Settings(k=5, times=2))
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="k=30"):
    query_expansion.expanded(np.ones((3, 2)), np.ones((4, 2)), query_expansion.Settings(k=30))


def test_reid_metrics_score_the_expanded_embeddings():
  from tests.eval.test_reid import reference_reid
  rng = np.random.default_rng(2)
  query, gallery = rng.normal(size=(30, 6)).astype(np.float32), rng.normal(size=(90, 6)).astype(np.float32)
  ids = rng.integers(1, 8, 30), rng.integers(-1, 8, 90)
  cams = rng.integers(0, 3, 30), rng.integers(0, 3, 90)
  data = (query, ids[0], cams[0], gallery, ids[1], cams[1])
  got = jaxret.eval.reid_metrics(*data, metric="cosine", query_expansion=query_expansion.Settings())
  expanded_query, expanded_gallery = fastreid_aqe(query, gallery)
  want = reference_reid(expanded_query, ids[0], cams[0], expanded_gallery, ids[1], cams[1], metric="cosine")
  assert got == pytest.approx(want, abs=1e-6)
  assert got != pytest.approx(jaxret.eval.reid_metrics(*data, metric="cosine"), abs=1e-3)
