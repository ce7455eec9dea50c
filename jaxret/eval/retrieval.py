"""Metric-learning retrieval metrics: Recall@K, precision@1, R-precision, MAP@R, mAP and NMI.

Definitions, for a query with class y, the gallery ranked by score (cosine similarity by
default), ties broken by gallery index (smaller first), and the query itself left out of the
ranking when the query set is the gallery set. R = number of gallery items of class y (the
query itself excluded), rel(i) = 1 when the item at rank i has class y,
P(i) = (1/i) sum_{j<=i} rel(j):

  recall@K      1 if any of the top K items has class y, else 0 (Oh Song et al. 2016)
  precision@1   rel(1)
  r_precision   (1/R) sum_{i<=R} rel(i)
  map@r         (1/R) sum_{i<=R} P(i) rel(i)     (Musgrave et al. 2020, "A Metric Learning
                                                  Reality Check")
  map           (1/R) sum_{i<=G} P(i) rel(i)     (over the whole ranking)

Each is averaged over the queries with R >= 1; queries with R = 0 (their class has no other
gallery item) are skipped and counted in `skipped_queries`.

  nmi           normalized mutual information (arithmetic mean normalisation) between the
                classes and k-means clusters (k = number of classes) of the query embeddings,
                L2-normalised first for the cosine metric; scikit-learn KMeans, k-means++,
                n_init=1, random_state=seed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, knn, ranking, verification


def retrieval_metrics(query_emb: np.ndarray, query_labels: np.ndarray,
                      gallery_emb: np.ndarray | None = None, gallery_labels: np.ndarray | None = None,
                      *, ks: Sequence[int] = (1, 2, 4, 8, 16, 32), metric: str = "cosine",
                      with_nmi: bool = True, full_ranking: bool = True, block_size: int = 4096,
                      query_block: int | None = None, seed: int = 0,
                      mesh: Mesh | None = None, fprs: tuple[float, ...] = ()) -> dict[str, float]:
  """Retrieval metrics (see the module docstring for exact definitions).

  Args:
    query_emb: `[Q, D]` embeddings; query_labels: `[Q]` int class ids.
    gallery_emb, gallery_labels: `[G, D]`, `[G]`; both None: the queries are their own gallery
      and each query excludes itself.
    ks: the K of recall@K.
    metric: "cosine" or "euclidean".
    with_nmi: also run k-means for "nmi" (the slowest part on large sets).
    full_ranking: also compute "r_precision", "map@r" and "map", which rank the whole gallery
      per query (a sort of G items per query); False computes recall@K and precision@1 from an
      exact top-max(ks) search instead.
    block_size: gallery items per scan step of the top-k search.
    query_block: queries per kernel call (default: chosen by the kernel used).
    seed: k-means seed.
    mesh: mesh with axis "data" over which queries are sharded (default: all devices).
    fprs: also report TPR at these false positive rates over all (query, gallery item) pairs
      (`jaxret.eval.verification`: "tpr@fpr=1e-04", ...).

  Returns:
    {"recall@K": ..., "precision@1", "r_precision", "map@r", "map", "nmi", "skipped_queries"};
    metrics over no query are NaN.
  """
  if metric not in ("cosine", "euclidean"):
    raise ValueError(f"metric must be 'cosine' or 'euclidean' for retrieval; got {metric!r}.")
  ks = inputs.positive_ints("ks", ks)
  query_emb = inputs.embeddings("query_emb", query_emb)
  query_labels = inputs.labels("query_labels", query_labels, n=len(query_emb))
  if (gallery_emb is None) != (gallery_labels is None):
    raise ValueError("gallery_emb and gallery_labels must be given together (or both left None).")
  if gallery_emb is not None:
    gallery_emb = inputs.embeddings("gallery_emb", gallery_emb, dim=query_emb.shape[1])
    gallery_labels = inputs.labels("gallery_labels", gallery_labels, n=len(gallery_emb))
  num_relevant = _num_relevant(query_labels, query_labels if gallery_labels is None else gallery_labels,
                               self_gallery=gallery_emb is None)
  counted = num_relevant > 0
  metrics: dict[str, float] = {}
  if full_ranking:
    stats = ranking.ranking_stats(query_emb, query_labels, gallery_emb, gallery_labels, metric=metric,
                                  query_block=query_block, mesh=mesh)
    first = stats["first_rank"][counted]
    for k in ks:
      metrics[f"recall@{k}"] = ranking.query_mean(first <= k)
    metrics["precision@1"] = ranking.query_mean(first == 1)
    r = num_relevant[counted].astype(np.float64)
    metrics["r_precision"] = ranking.query_mean(stats["hits_at_r"][counted] / r)
    metrics["map@r"] = ranking.query_mean(stats["ap_at_r_sum"][counted] / r)
    metrics["map"] = ranking.query_mean(stats["ap_sum"][counted] / r)
  else:
    num_gallery = len(query_emb) - 1 if gallery_emb is None else len(gallery_emb)
    hits = neighbour_hits(query_emb, query_labels, gallery_emb, gallery_labels,
                          k=max(1, min(max(ks), num_gallery)), metric=metric,
                          block_size=block_size, query_block=query_block, mesh=mesh)[counted]
    for k in ks:
      metrics[f"recall@{k}"] = ranking.query_mean(hits[:, :k].any(axis=1))
    metrics["precision@1"] = ranking.query_mean(hits[:, 0])
  if with_nmi:
    metrics["nmi"] = nmi(query_emb, query_labels, normalize=metric == "cosine", seed=seed)
  metrics["skipped_queries"] = int(np.sum(~counted))
  if fprs:
    metrics.update(verification.tpr_at_fpr(
        *ranking.pair_arrays(query_emb, query_labels, gallery_emb, gallery_labels, metric=metric), metric=metric,
        fprs=fprs, query_block=query_block, mesh=mesh))
  return metrics


def neighbour_hits(query_emb: np.ndarray, query_labels: np.ndarray,
                   gallery_emb: np.ndarray | None, gallery_labels: np.ndarray | None, *, k: int,
                   metric: str, block_size: int = 4096, query_block: int | None = None,
                   mesh: Mesh | None = None) -> np.ndarray:
  """`[Q, k]` bool: the i-th nearest gallery item (ties: smaller index first) has the query's class."""
  gallery_labels = query_labels if gallery_labels is None else gallery_labels
  found = knn.nearest_neighbours(query_emb, gallery_emb, k=k, metric=metric, block_size=block_size,
                  query_block=query_block, mesh=mesh).indices
  same = np.asarray(gallery_labels)[np.maximum(found, 0)] == np.asarray(query_labels)[:, None]
  return (found >= 0) & same


def nmi(embeddings: np.ndarray, labels: np.ndarray, *, normalize: bool = True, seed: int = 0) -> float:
  """NMI between `labels` `[N]` and k-means clusters (k = number of classes) of `embeddings` `[N, D]`."""
  try:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score
  except ImportError as e:
    raise ImportError("NMI needs scikit-learn (pip install scikit-learn); "
                      "or pass with_nmi=False.") from e
  x = inputs.embeddings("embeddings", embeddings).astype(np.float64)
  labels = inputs.labels("labels", labels, n=len(x))
  if normalize:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  num_classes = len(np.unique(labels))
  clusters = KMeans(n_clusters=num_classes, n_init=1, random_state=seed).fit_predict(x)
  return float(normalized_mutual_info_score(labels, clusters))


def _num_relevant(query_labels: np.ndarray, gallery_labels: np.ndarray, *,
                  self_gallery: bool) -> np.ndarray:
  """`[Q]` R: gallery items of each query's class, the query itself not counted."""
  classes, counts = np.unique(gallery_labels, return_counts=True)
  position = np.clip(np.searchsorted(classes, query_labels), 0, len(classes) - 1)
  found = classes[position] == query_labels
  return np.where(found, counts[position], 0) - (1 if self_gallery else 0)

