"""Person re-identification metrics, Market-1501 / DukeMTMC-reID protocol, single query.

For each query (identity y, camera c), the gallery is ranked by Euclidean distance (default;
cosine similarity on request), ties broken by gallery index (smaller first), after removing:
- gallery items with identity y AND camera c (same person seen by the same camera);
- gallery items with identity -1 (junk).
Identity 0 (distractors) stays in the gallery and never matches a query of another identity.
Matches are the remaining items of identity y; R = their number, rel(i) = 1 when rank i is a
match, P(i) = (1/i) sum_{j<=i} rel(j). Then, averaged over queries with R >= 1 (queries without
any valid match are skipped and counted in `skipped_queries`):

  rankK   CMC at rank K: 1 if a match is among the top K, else 0 (K = 1, 5, 10, 20)
  map     AP = (1/R) sum_i P(i) rel(i): the standard, non-interpolated AP of torchreid /
          fast-reid (not the trapezoidal AP of the original Market-1501 MATLAB code)
  minp    INP = R / (rank of the last match) (Ye et al. 2021, "Deep Learning for Person
          Re-identification: A Survey and Outlook")

With `rerank`, the gallery is ranked by the k-reciprocal re-ranked distance instead
(`jaxret.eval.rerank`, computed over the queries and the whole gallery, junk included, before
the removals above, as torchreid and fast-reid do); with `query_expansion`, the embeddings are
first replaced by their average query expansion (`jaxret.eval.query_expansion`).
"""
from __future__ import annotations

import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, query_expansion as query_expansion_lib, ranking, rerank as rerank_lib, verification

CMC_RANKS: tuple[int, ...] = (1, 5, 10, 20)


def reid_metrics(query_emb: np.ndarray, query_ids: np.ndarray, query_cams: np.ndarray,
                 gallery_emb: np.ndarray, gallery_ids: np.ndarray, gallery_cams: np.ndarray, *,
                 metric: str = "euclidean", query_block: int | None = None,
                 mesh: Mesh | None = None, rerank: rerank_lib.Settings | None = None,
                 query_expansion: query_expansion_lib.Settings | None = None,
                 fprs: tuple[float, ...] = ()) -> dict[str, float]:
  """Re-ID metrics (see the module docstring for exact definitions).

  Args:
    query_emb: `[Q, D]`; query_ids, query_cams: `[Q]` ints (query ids must not be -1).
    gallery_emb: `[G, D]`; gallery_ids, gallery_cams: `[G]` ints (-1 junk, 0 distractor).
    metric: "euclidean" or "cosine".
    query_block: queries per kernel call (default: chosen from the gallery size).
    mesh: mesh with axis "data" over which queries are sharded (default: all devices).
    rerank: k-reciprocal re-ranking's (k1, k2, lambda), or None.
    query_expansion: average query expansion's (k, alpha, times), or None.
    fprs: also report TPR at these false positive rates over the pairs ranked
      (`jaxret.eval.verification`: "tpr@fpr=1e-04", ...).

  Returns:
    {"rank1", "rank5", "rank10", "rank20", "map", "minp", "skipped_queries"}; metrics over no
    query are NaN.
  """
  if metric not in ("euclidean", "cosine"):
    raise ValueError(f"metric must be 'euclidean' or 'cosine' for re-ID; got {metric!r}.")
  query_emb = inputs.embeddings("query_emb", query_emb)
  gallery_emb = inputs.embeddings("gallery_emb", gallery_emb, dim=query_emb.shape[1])
  query_ids = inputs.labels("query_ids", query_ids, n=len(query_emb))
  query_cams = inputs.labels("query_cams", query_cams, n=len(query_emb))
  gallery_ids = inputs.labels("gallery_ids", gallery_ids, n=len(gallery_emb))
  gallery_cams = inputs.labels("gallery_cams", gallery_cams, n=len(gallery_emb))
  if (query_ids == -1).any():
    raise ValueError(f"query_ids must not be -1 (junk); query {int(np.argmax(query_ids == -1))} is.")
  if query_expansion is not None:
    query_emb, gallery_emb = query_expansion_lib.expanded(query_emb, gallery_emb, query_expansion, mesh=mesh)
  pair_fields = None
  if rerank is not None:
    pair_fields = rerank_lib.pair_fields(query_emb, gallery_emb, metric=metric, k1=rerank.k1, k2=rerank.k2,
                                         lam=rerank.lam, mesh=mesh)
    query_block = query_block or rerank_lib.query_block(len(gallery_emb), pair_fields[0]["rerank_index"].shape[1])
  same = (np.stack([query_ids, query_cams], 1), np.stack([gallery_ids, gallery_cams], 1))
  pairs = dict(metric=metric, exclude_same=same, gallery_valid=gallery_ids != -1, pair_fields=pair_fields)
  stats = ranking.ranking_stats(query_emb, query_ids, gallery_emb, gallery_ids, query_block=query_block, mesh=mesh,
                                **pairs)
  counted = stats["num_relevant"] > 0
  first = stats["first_rank"][counted]
  r = stats["num_relevant"][counted].astype(np.float64)
  metrics = {f"rank{k}": ranking.query_mean(first <= k) for k in CMC_RANKS}
  metrics["map"] = ranking.query_mean(stats["ap_sum"][counted] / r)
  metrics["minp"] = ranking.query_mean(r / stats["last_rank"][counted])
  metrics["skipped_queries"] = int(np.sum(~counted))
  if fprs:
    arrays = ranking.pair_arrays(query_emb, query_ids, gallery_emb, gallery_ids, **pairs)
    metrics.update(verification.tpr_at_fpr(*arrays, metric=metric, fprs=fprs, query_block=query_block, mesh=mesh))
  return metrics

