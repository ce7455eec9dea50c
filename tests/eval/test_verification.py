"""TPR@FPR against a NumPy reference over all (query, gallery item) pairs, with exact score ties."""
import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import verification
from tests.eval.test_reid import market_like

FPRS = (1e-3, 0.01, 0.05, 0.2, 1.0)


def reference_tpr_at_fpr(scores, positive, negative, fprs):
  """Largest TPR of a threshold t (accept score > t) whose FPR <= f, by trying every t: the
  distinct scores and -inf."""
  pos, neg = scores[positive], scores[negative]
  out = {}
  for f in fprs:
    best = 0.0
    for t in np.concatenate([np.unique(scores), [-np.inf]]):
      if np.sum(neg > t) <= f * len(neg):
        best = max(best, np.mean(pos > t))
    out[verification.metric_name(f)] = best
  return out


def test_reid_pairs_equal_the_reference():
  query, query_ids, query_cams, gallery, gallery_ids, gallery_cams = data = market_like(np.random.default_rng(4))
  scores = -((query[:, None, :].astype(np.int64) - gallery[None, :, :].astype(np.int64)) ** 2).sum(-1)  # exact
  visible = (gallery_ids[None] != -1) & ~((gallery_ids[None] == query_ids[:, None]) &
                                          (gallery_cams[None] == query_cams[:, None]))
  same = gallery_ids[None] == query_ids[:, None]
  want = reference_tpr_at_fpr(scores, same & visible, ~same & visible, FPRS)
  got = jaxret.eval.reid_metrics(*data, fprs=FPRS, query_block=8)
  assert {k: got[k] for k in want} == pytest.approx(want, abs=1e-12)
  assert len(set(want.values())) > 2  # the operating points differ


def test_retrieval_pairs_exclude_each_query_itself():
  rng = np.random.default_rng(5)
  x = rng.integers(-2, 3, (60, 3)).astype(np.float32)
  labels = rng.integers(0, 5, 60)
  scores = -((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
  visible = ~np.eye(60, dtype=bool)
  same = labels[:, None] == labels[None, :]
  want = reference_tpr_at_fpr(scores, same & visible, ~same & visible, FPRS)
  got = jaxret.eval.retrieval_metrics(x, labels, metric="euclidean", with_nmi=False, fprs=FPRS)
  assert {k: got[k] for k in want} == pytest.approx(want, abs=1e-12)



def test_thresholds_inside_crowded_histogram_buckets_are_exact():
  """Integer points 400 apart at most: every squared distance is exact in float32, and from FPR
  0.01 on the threshold shares its top-16-bit bucket with other scores (4, 14, 50 distinct ones),
  so the second histograms, over the low 16 bits of several buckets at once, decide it."""
  rng = np.random.default_rng(6)
  x = rng.integers(-200, 201, (300, 3)).astype(np.float32)
  labels = rng.integers(0, 4, 300)
  scores = -((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
  visible = ~np.eye(300, dtype=bool)
  same = labels[:, None] == labels[None, :]
  fprs = (1e-4, 1e-3, 3e-3, 0.01, 0.05, 0.3)
  negatives = np.sort(scores[~same & visible].astype(np.float32))[::-1]
  thresholds = negatives[[int(f * len(negatives)) for f in fprs]]
  shared = [np.unique(negatives[negatives.view(np.uint32) >> 16 == t.view(np.uint32) >> 16]).size for t in thresholds]
  assert min(shared[3:]) > 1 and len(set(thresholds.view(np.uint32) >> 16)) == len(fprs)
  want = reference_tpr_at_fpr(scores, same & visible, ~same & visible, fprs)
  got = jaxret.eval.retrieval_metrics(x, labels, metric="euclidean", with_nmi=False, fprs=fprs, query_block=64)
  assert {k: got[k] for k in want} == pytest.approx(want, abs=1e-12)
  assert len(set(want.values())) == len(fprs)
