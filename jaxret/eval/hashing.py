"""Hashing metrics: Hamming-ranking mAP, mAP@K, tie-aware mAP and precision-recall by radius.

Codes are {-1, +1} `[N, bits]` (or booleans, or bits packed as uint8, see `inputs.sign_codes`).
A database item is relevant to a query when they share a class: equal class ids for labels
`[N]`, any common label for multi-hot labels `[N, L]`. The database is ranked by Hamming
distance, ascending. With R = number of relevant database items, rel(i) = 1 when rank i is
relevant and P(i) = (1/i) sum_{j<=i} rel(j):

  map             AP = (1/R) sum_{i<=N} P(i) rel(i), ties broken by database index (smaller
                  first, i.e. a stable sort by distance); every database item is ranked.
  map@K           AP@K = (1/R_K) sum_{i<=K} P(i) rel(i) with R_K = sum_{i<=K} rel(i), and
                  AP@K = 0 when R_K = 0 (as in ADSH's / DeepHash's `CalcTopMap`); same ties.
  map_tie_aware   the expected AP when the items at each Hamming distance are put in a
                  uniformly random order (McFee & Lanckriet 2010, "Metric learning to rank"):
                  independent of how ties are broken; see `tie_aware_ap` for the closed form.

Queries without any relevant database item (R = 0), by `empty_queries`: "skip" (the default:
their AP is undefined, so all three are averaged over the queries with R >= 1) or "zero" (they
count as AP 0 and the mean is over all queries, as ADSH's `calc_map` / `calc_topMap` and
DeepHash's `CalcTopMap` do: `continue`, then a division by the number of queries). Either way
their number is reported as `skipped_queries`. With the training set as database every query's
class is in it, so the two differ only on other databases.
"""
from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding, ranking

EMPTY_QUERIES = ("skip", "zero")  # queries with no relevant item: left out of the mean, or AP 0


def hashing_metrics(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                    db_labels: np.ndarray, *, topk: int | None = None, query_block: int | None = None,
                    mesh: Mesh | None = None, empty_queries: str = "skip") -> dict[str, float]:
  """Hashing metrics (see the module docstring for exact definitions).

  Args:
    query_codes: `[Q, bits]`; query_labels: `[Q]` int class ids or multi-hot `[Q, L]`.
    db_codes: `[N, bits]`; db_labels: `[N]` or `[N, L]`.
    topk: also report "map@{topk}".
    query_block: queries per kernel call (default: chosen from the database size).
    mesh: mesh with axis "data" over which queries are sharded (default: all devices).
    empty_queries: "skip" (default) or "zero": queries with no relevant database item left out
      of the means, or counted as AP 0 (ADSH's and DeepHash's code; module docstring).

  Returns:
    {"map", "map_tie_aware", "map@K" (when topk is given), "skipped_queries"}; metrics over no
    query are NaN.
  """
  if empty_queries not in EMPTY_QUERIES:
    raise ValueError(f"empty_queries={empty_queries!r}: expected one of {EMPTY_QUERIES}")
  query_codes, query_labels, db_codes, db_labels = _read(query_codes, query_labels, db_codes, db_labels)
  stats = ranking.ranking_stats(query_codes, query_labels, db_codes, db_labels, metric="hamming",
                                topk=topk, query_block=query_block, mesh=mesh)
  histograms = distance_histograms(query_codes, query_labels, db_codes, db_labels,
                                   query_block=query_block, mesh=mesh)
  counted = stats["num_relevant"] > 0

  def mean(ap: np.ndarray) -> float:  # ap `[Q]`, any value (NaN) where R = 0
    if empty_queries == "zero":
      return ranking.query_mean(np.where(counted, ap, 0.0))
    return ranking.query_mean(ap[counted])

  with np.errstate(invalid="ignore", divide="ignore"):
    metrics = {"map": mean(stats["ap_sum"] / stats["num_relevant"]),
               "map_tie_aware": mean(tie_aware_ap(histograms["items"], histograms["relevant"]))}
  if topk is not None:
    hits = stats["hits_at_k"].astype(np.float64)
    # ap_at_k_sum is 0 when no relevant item is in the top K, so AP@K = 0 there.
    metrics[f"map@{topk}"] = mean(stats["ap_at_k_sum"] / np.maximum(hits, 1))
  metrics["skipped_queries"] = int(np.sum(~counted))
  return metrics


def distance_histograms(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                        db_labels: np.ndarray, *, query_block: int | None = None,
                        mesh: Mesh | None = None) -> dict[str, np.ndarray]:
  """Per query and Hamming distance d = 0..bits: "items" (database items at distance d) and
  "relevant" (relevant ones among them), each int32 `[Q, bits + 1]`."""
  query_codes, query_labels, db_codes, db_labels = _read(query_codes, query_labels, db_codes, db_labels)
  if query_block is None:
    query_block = max(8, (1 << 22) // len(db_codes))
  return query_sharding.map_query_chunks(
      _DistanceHistogram(bits=query_codes.shape[1]), {"x": query_codes, "labels": query_labels},
      {"x": db_codes, "labels": db_labels},
      chunk=query_sharding.chunk_size(len(query_codes), query_block), mesh=mesh)


def tie_aware_ap(items: np.ndarray, relevant: np.ndarray) -> np.ndarray:
  """Tie-aware AP `[Q]` (float64; NaN when R = 0) from per-distance counts `[Q, T]`.

  Groups t = 0..T-1 (Hamming distances, nearest first) hold n_t items of which r_t are
  relevant; N_t = sum_{s<t} n_s and R_t = sum_{s<t} r_s come before group t. Every order
  inside a group being equally likely, the relevant item at within-group position p
  (prob. r_t/n_t) has precision (R_t + 1 + E[relevant before it in the group]) / (N_t + p),
  and E[...] = (p - 1)(r_t - 1)/(n_t - 1). By linearity of expectation,

    E[AP] = (1/R) sum_t (r_t/n_t) sum_{p=1}^{n_t} (R_t + 1 + (p-1)(r_t-1)/(n_t-1)) / (N_t + p)
          = (1/R) sum_t (r_t/n_t) [ (R_t + 1) dH_t + (r_t-1)/(n_t-1) (n_t - (N_t + 1) dH_t) ],

  with dH_t = H(N_t + n_t) - H(N_t) = sum_{p=1}^{n_t} 1/(N_t + p), H the harmonic numbers, and
  the (r_t-1)/(n_t-1) term taken as 0 when n_t = 1.
  """
  n = np.asarray(items, np.float64)
  r = np.asarray(relevant, np.float64)
  if n.shape != r.shape or n.ndim != 2:
    raise ValueError(f"items and relevant must be [Q, T] of one shape; got {n.shape} and {r.shape}.")
  before_n = np.cumsum(n, axis=1) - n
  before_r = np.cumsum(r, axis=1) - r
  total_r = r.sum(axis=1)
  most = int(n.sum(axis=1).max(initial=0))
  harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, most + 1))])  # H(0..most)
  dh = harmonic[(before_n + n).astype(np.int64)] - harmonic[before_n.astype(np.int64)]
  others = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
  inside = (before_r + 1) * dh + others * (n - (before_n + 1) * dh)
  group = np.where(r > 0, r / np.maximum(n, 1) * inside, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(total_r > 0, group.sum(axis=1) / total_r, np.nan)


def precision_recall_curve(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                           db_labels: np.ndarray, *, query_block: int | None = None,
                           mesh: Mesh | None = None) -> dict[str, np.ndarray]:
  """Precision and recall of Hamming-ball retrieval at each radius r = 0..bits, `[bits + 1]` each.

  For a query, the items within radius r are retrieved: recall(r) = relevant retrieved / R,
  precision(r) = relevant retrieved / retrieved. Both are averaged over the queries with
  R >= 1; precision only over those that retrieve at least one item (NaN when none does).
  """
  h = distance_histograms(query_codes, query_labels, db_codes, db_labels, query_block=query_block,
                          mesh=mesh)
  counted = h["relevant"].sum(axis=1) > 0
  retrieved = np.cumsum(h["items"][counted], axis=1).astype(np.float64)
  hits = np.cumsum(h["relevant"][counted], axis=1).astype(np.float64)
  recall = (hits / hits[:, -1:]).mean(axis=0) if counted.any() else np.full(hits.shape[1], np.nan)
  with np.errstate(invalid="ignore", divide="ignore"):
    per_query = np.where(retrieved > 0, hits / retrieved, 0.0)
    precision = per_query.sum(axis=0) / (retrieved > 0).sum(axis=0)
  return {"radius": np.arange(hits.shape[1]), "precision": precision, "recall": recall}


@dataclasses.dataclass(frozen=True)
class _DistanceHistogram:
  """Kernel: counts of all / relevant database items per Hamming distance for one query chunk."""
  bits: int

  def prepare(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> tuple[dict, dict]:
    return q, g

  def __call__(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """q: "x" `[n, bits]`, "labels", "valid" `[n]`; g: "x" `[N, bits]`, "labels".
    Returns "items", "relevant" int32 `[n, bits + 1]`."""
    chex.assert_rank([q["x"], g["x"]], 2)
    chex.assert_equal_shape_suffix([q["x"], g["x"]], 1)
    chex.assert_axis_dimension(q["x"], 1, self.bits)
    distance = jnp.round(-pairwise.scores(q["x"], g["x"], "hamming")).astype(jnp.int32)
    shown = jnp.broadcast_to(q["valid"][:, None], distance.shape).astype(jnp.int32)
    rel = pairwise.relevant(q["labels"], g["labels"]).astype(jnp.int32) * shown

    def count(weights: jax.Array) -> jax.Array:
      return jax.vmap(lambda d, w: jnp.zeros(self.bits + 1, jnp.int32).at[d].add(w))(distance, weights)

    return {"items": count(shown), "relevant": count(rel)}


def _read(query_codes: object, query_labels: object, db_codes: object,
          db_labels: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Checked (query codes `[Q, bits]`, query labels, database codes `[N, bits]`, database labels)."""
  query_codes = inputs.sign_codes("query_codes", query_codes)
  db_codes = inputs.sign_codes("db_codes", db_codes, bits=query_codes.shape[1])
  query_labels = inputs.labels("query_labels", query_labels, n=len(query_codes), multi_hot=True)
  db_labels = inputs.labels("db_labels", db_labels, n=len(db_codes), multi_hot=True)
  if query_labels.shape[1:] != db_labels.shape[1:]:
    raise ValueError(f"query_labels and db_labels must both be class ids or both multi-hot with "
                     f"the same L; got shapes {query_labels.shape} and {db_labels.shape}.")
  return query_codes, query_labels, db_codes, db_labels
