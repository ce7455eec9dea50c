"""Per-query statistics of the full ranking of the gallery, computed in query chunks on device.

Every full-ranking metric (mAP, MAP@R, R-precision, CMC, mINP, hashing mAP and mAP@K) is a
host-side float64 function of these statistics, and they follow from the ranks of the relevant
items alone. Two kernels compute them, each scoring a chunk of queries against the whole
gallery (`pairwise.scores`), so memory is O(query chunk x gallery), never Q x G:
- "relevant_ranks" (class-id labels; the default for them): the ranks of each query's
  relevant items without sorting the gallery (`relevant_ranks.py`); the statistics are then
  float64 sums over those ranks on the host.
- "full_sort" (any labels; the default for multi-hot ones): a stable sort of each row (hidden
  items last), reduced to the statistics on device; kept as the reference of the other.

Ranking: visible gallery items by score, descending; ties broken by gallery index, smaller
index first (a stable sort of the items in index order). Hidden items (excluded pairs,
invalid gallery items) take no rank. With rel(i) = 1 when the item at rank i is relevant,
R = sum_i rel(i) and P(i) = (1/i) sum_{j<=i} rel(j), the statistics of one query are:

  num_relevant   R
  first_rank     smallest i with rel(i) = 1 (0 when R = 0)
  last_rank      largest i with rel(i) = 1 (0 when R = 0)
  hits_at_r      sum_{i<=R} rel(i)
  ap_sum         sum_i P(i) rel(i)            (AP = ap_sum / R)
  ap_at_r_sum    sum_{i<=R} P(i) rel(i)       (MAP@R term = ap_at_r_sum / R)
  hits_at_k      sum_{i<=topk} rel(i)         (only when topk is given)
  ap_at_k_sum    sum_{i<=topk} P(i) rel(i)    (only when topk is given)

Both give the same integer statistics. The sums differ by rounding only: "full_sort" sums
float32 P(i) terms (one rounding each) pairwise, a relative error below ~log2(G) * 6e-8;
"relevant_ranks" sums them in float64.
"""
from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding, relevant_ranks

# Elements of one [query chunk, gallery] block; the kernel holds a few such int32/float32 arrays.
_CHUNK_ELEMENTS = 1 << 23
METHODS = ("auto", "relevant_ranks", "full_sort")


def ranking_stats(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray | None = None,
                  gallery_labels: np.ndarray | None = None, *, metric: str = "cosine",
                  exclude_same: tuple[np.ndarray, np.ndarray] | None = None,
                  gallery_valid: np.ndarray | None = None, topk: int | None = None,
                  query_block: int | None = None, mesh: Mesh | None = None,
                  method: str = "auto",
                  pair_fields: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
                  ) -> dict[str, np.ndarray]:
  """Statistics `[Q]` (see the module docstring) of each query's full ranking.

  Args:
    query: `[Q, D]` embeddings (for "hamming": codes, see `inputs.sign_codes`).
    query_labels: `[Q]` int class ids, or multi-hot `[Q, L]` (relevant = shares a label).
    gallery, gallery_labels: `[G, D]`, `[G]` (or `[G, L]`); both None means the queries are their
      own gallery and each query hides itself.
    metric: "cosine", "euclidean" or "hamming".
    exclude_same: (query keys `[Q]`/`[Q, c]`, gallery keys `[G]`/`[G, c]`): a gallery item whose
      c keys all equal the query's is hidden from it.
    gallery_valid: `[G]` bool; False hides the item from every query.
    topk: also compute hits_at_k and ap_at_k_sum for this cut-off.
    query_block: queries per kernel call; default: as many as keep a block near 2^23 elements.
    mesh: mesh with axis "data" (default: all devices).
    method: "relevant_ranks" (class-id labels only), "full_sort", or "auto": the first for
      class ids, the second for multi-hot labels.
    pair_fields: (query arrays `[Q, ...]`, gallery arrays) that change how a pair scores
      (`pairwise.prepared_scores`: re-ranking's, `rerank.pair_fields`).
  """
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
  queries, gallery_arrays = pair_arrays(query, query_labels, gallery, gallery_labels, metric=metric,
                                        exclude_same=exclude_same, gallery_valid=gallery_valid,
                                        pair_fields=pair_fields)
  query_labels, gallery_labels = queries["labels"], gallery_arrays["labels"]
  num_gallery = len(gallery_arrays["x"])
  if topk is not None and (not isinstance(topk, (int, np.integer)) or topk < 1):
    raise ValueError(f"topk must be a positive integer or None; got {topk!r}.")
  if query_block is None:
    query_block = max(8, _CHUNK_ELEMENTS // num_gallery)
  chunk = query_sharding.chunk_size(len(queries["x"]), query_block)
  topk = None if topk is None else int(topk)
  if method == "auto":
    method = "relevant_ranks" if query_labels.ndim == 1 else "full_sort"
  if method == "full_sort":
    kernel = _RankingStats(metric=metric, topk=topk)
    return query_sharding.map_query_chunks(kernel, queries, gallery_arrays, chunk=chunk, mesh=mesh)
  if query_labels.ndim != 1:
    raise ValueError(f"method 'relevant_ranks' needs class-id labels [N]; got multi-hot labels of "
                     f"shape {query_labels.shape} (use method 'full_sort' or 'auto').")
  del queries["labels"], gallery_arrays["labels"]
  gallery_arrays["members"], queries["member_row"] = relevant_ranks.class_members(query_labels, gallery_labels)
  out = query_sharding.map_query_chunks(relevant_ranks.RelevantRanks(metric=metric), queries,
                                        gallery_arrays, chunk=chunk, mesh=mesh)
  return stats_from_ranks(out["ranks"], out["num_relevant"], topk=topk)


def pair_arrays(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray | None = None,
                gallery_labels: np.ndarray | None = None, *, metric: str = "cosine",
                exclude_same: tuple[np.ndarray, np.ndarray] | None = None,
                gallery_valid: np.ndarray | None = None,
                pair_fields: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(query arrays, gallery arrays) of the pairs `ranking_stats` ranks (arguments as there),
  checked: "x", "labels", optional "keys" and pair fields; the gallery's also "valid"."""
  pairwise.check_metric(metric)
  query = inputs.vectors("query", query, metric)
  query_labels = inputs.labels("query_labels", query_labels, n=len(query), multi_hot=True)
  if (gallery is None) != (gallery_labels is None):
    raise ValueError("gallery and gallery_labels must be given together (or both left None).")
  if gallery is None:
    if exclude_same is not None:
      raise ValueError("exclude_same needs an explicit gallery; with gallery=None each query "
                       "already hides only itself.")
    gallery, gallery_labels = query, query_labels
    exclude_same = (np.arange(len(query)), np.arange(len(query)))
  else:
    gallery = inputs.vectors("gallery", gallery, metric, dim=query.shape[1])
    gallery_labels = inputs.labels("gallery_labels", gallery_labels, n=len(gallery), multi_hot=True)
  if query_labels.shape[1:] != gallery_labels.shape[1:]:
    raise ValueError(f"query_labels and gallery_labels must both be class ids or both multi-hot "
                     f"with the same L; got shapes {query_labels.shape} and {gallery_labels.shape}.")
  num_gallery = len(gallery)
  if num_gallery == 0:
    raise ValueError("the gallery is empty: expected at least one gallery item to rank (a re-ID split "
                     "whose every image is the first of its identity and camera has no gallery)")
  queries = {"x": query, "labels": query_labels}
  gallery_arrays = {"x": gallery, "labels": gallery_labels,
                    "valid": inputs.visible("gallery_valid", gallery_valid, n=num_gallery)}
  if exclude_same is not None:
    queries["keys"], gallery_arrays["keys"] = inputs.exclusion_keys(
        "exclude_same", exclude_same, num_query=len(query), num_gallery=num_gallery)
  if pair_fields is not None:
    queries, gallery_arrays = {**queries, **pair_fields[0]}, {**gallery_arrays, **pair_fields[1]}
  return queries, gallery_arrays


def stats_from_ranks(ranks: np.ndarray, num_relevant: np.ndarray, *,
                     topk: int | None = None) -> dict[str, np.ndarray]:
  """The statistics (module docstring) from the ranks of the relevant items, in float64.

  Args:
    ranks: `[Q, S]` int: row q holds the ascending 1-based ranks r_1 < ... < r_R of query q's
      R relevant items, then anything (ignored).
    num_relevant: `[Q]` int R per query (<= S).
    topk: also compute hits_at_k and ap_at_k_sum.
  """
  ranks = np.asarray(ranks, np.int64)
  num_relevant = np.asarray(num_relevant, np.int64)
  position = np.arange(1, ranks.shape[1] + 1)[None, :]                  # m: hits at rank r_m
  real = position <= num_relevant[:, None]
  precision = np.where(real, position / np.maximum(ranks, 1), 0.0)      # P(r_m) = m / r_m
  within_r = real & (ranks <= num_relevant[:, None])
  last = np.take_along_axis(ranks, np.maximum(num_relevant - 1, 0)[:, None], axis=1)[:, 0]
  out = {
      "num_relevant": num_relevant,
      "first_rank": np.where(num_relevant > 0, ranks[:, 0], 0),
      "last_rank": np.where(num_relevant > 0, last, 0),
      "hits_at_r": within_r.sum(axis=1),
      "ap_sum": precision.sum(axis=1),
      "ap_at_r_sum": np.where(within_r, precision, 0.0).sum(axis=1),
  }
  if topk is not None:
    within_k = real & (ranks <= topk)
    out["hits_at_k"] = within_k.sum(axis=1)
    out["ap_at_k_sum"] = np.where(within_k, precision, 0.0).sum(axis=1)
  return out


def query_mean(values: np.ndarray) -> float:
  """Mean over queries in float64; NaN when there is no query to average."""
  values = np.asarray(values, np.float64)
  return float(values.mean()) if values.size else float("nan")


@dataclasses.dataclass(frozen=True)
class _RankingStats:
  """Kernel: ranking statistics of one query chunk against the whole gallery."""
  metric: str
  topk: int | None

  def prepare(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> tuple[dict, dict]:
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """q: prepared "x" `[n, D]`, "sq_norm", "labels", "valid" `[n]`, optional "keys"; g: prepared "x" `[G, D]`,
    "sq_norm", "labels", "valid" `[G]`, optional "keys". Returns the statistics, each `[n]`."""
    chex.assert_rank([q["x"], g["x"]], 2)
    chex.assert_equal_shape_suffix([q["x"], g["x"]], 1)
    chex.assert_equal_shape_prefix([g["x"], g["labels"], g["valid"]], 1)
    hidden = pairwise.excluded(q.get("keys"), g.get("keys"), g["valid"]) | ~q["valid"][:, None]
    s = pairwise.prepared_scores(q, g, self.metric)
    rel = pairwise.relevant(q["labels"], g["labels"]) & ~hidden
    # Stable sort by (hidden, -score): ties keep gallery index order; hidden items go last.
    _, rel = jax.lax.sort((jnp.where(hidden, jnp.inf, -s), rel.astype(jnp.int32)),
                          dimension=1, is_stable=True, num_keys=1)
    rank = jnp.arange(1, rel.shape[1] + 1, dtype=jnp.int32)[None, :]
    hits = jnp.cumsum(rel, axis=1)
    num_relevant = hits[:, -1]
    is_rel = rel > 0
    precision = jnp.where(is_rel, hits.astype(jnp.float32) / rank.astype(jnp.float32), 0.0)
    within_r = rank <= num_relevant[:, None]
    first = jnp.min(jnp.where(is_rel, rank, rel.shape[1] + 1), axis=1)
    out = {
        "num_relevant": num_relevant,
        "first_rank": jnp.where(num_relevant > 0, first, 0),
        "last_rank": jnp.max(jnp.where(is_rel, rank, 0), axis=1),
        "hits_at_r": jnp.sum(rel * within_r, axis=1),
        "ap_sum": pairwise.tree_sum(precision),
        "ap_at_r_sum": pairwise.tree_sum(jnp.where(within_r, precision, 0.0)),
    }
    if self.topk is not None:
      within_k = rank <= self.topk
      out["hits_at_k"] = jnp.sum(rel * within_k, axis=1)
      out["ap_at_k_sum"] = pairwise.tree_sum(jnp.where(within_k, precision, 0.0))
    return out
