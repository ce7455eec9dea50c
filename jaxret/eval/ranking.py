"""Per-query statistics of the full ranking of the gallery, computed in query chunks on device.

For each chunk of queries the kernel scores the whole gallery (`pairwise.scores`), sorts it
(hidden items last), reduces the sorted relevance to a few numbers per query and discards the
ranking, so memory is O(query chunk x gallery), never Q x G. Every full-ranking metric
(mAP, MAP@R, R-precision, CMC, mINP, hashing mAP and mAP@K) is a host-side float64
function of these statistics.

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

The P(i) terms are float32 (exact integer ranks and counts, one rounding each) summed
pairwise, so the sums carry a relative error below ~log2(G) * 6e-8.
"""
from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding

# Elements of one [query chunk, gallery] block; the kernel holds a few such int32/float32 arrays.
_CHUNK_ELEMENTS = 1 << 23


def ranking_stats(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray | None = None,
                  gallery_labels: np.ndarray | None = None, *, metric: str = "cosine",
                  exclude_same: tuple[np.ndarray, np.ndarray] | None = None,
                  gallery_valid: np.ndarray | None = None, topk: int | None = None,
                  query_block: int | None = None, mesh: Mesh | None = None) -> dict[str, np.ndarray]:
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
  """
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
  if topk is not None and (not isinstance(topk, (int, np.integer)) or topk < 1):
    raise ValueError(f"topk must be a positive integer or None; got {topk!r}.")
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
  if query_block is None:
    query_block = max(8, _CHUNK_ELEMENTS // num_gallery)
  chunk = query_sharding.chunk_size(len(query), query_block)
  kernel = _RankingStats(metric=metric, topk=None if topk is None else int(topk))
  return query_sharding.map_query_chunks(kernel, queries, gallery_arrays, chunk=chunk, mesh=mesh)


def query_mean(values: np.ndarray) -> float:
  """Mean over queries in float64; NaN when there is no query to average."""
  values = np.asarray(values, np.float64)
  return float(values.mean()) if values.size else float("nan")


@dataclasses.dataclass(frozen=True)
class _RankingStats:
  """Kernel: ranking statistics of one query chunk against the whole gallery."""
  metric: str
  topk: int | None

  def __call__(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """q: "x" `[n, D]`, "labels", "valid" `[n]`, optional "keys"; g: "x" `[G, D]`, "labels",
    "valid" `[G]`, optional "keys". Returns the statistics, each `[n]`."""
    chex.assert_rank([q["x"], g["x"]], 2)
    chex.assert_equal_shape_suffix([q["x"], g["x"]], 1)
    chex.assert_equal_shape_prefix([g["x"], g["labels"], g["valid"]], 1)
    hidden = pairwise.excluded(q.get("keys"), g.get("keys"), g["valid"]) | ~q["valid"][:, None]
    s = pairwise.scores(q["x"], g["x"], self.metric)
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
        "ap_sum": _pairwise_sum(precision),
        "ap_at_r_sum": _pairwise_sum(jnp.where(within_r, precision, 0.0)),
    }
    if self.topk is not None:
      within_k = rank <= self.topk
      out["hits_at_k"] = jnp.sum(rel * within_k, axis=1)
      out["ap_at_k_sum"] = _pairwise_sum(jnp.where(within_k, precision, 0.0))
    return out


def _pairwise_sum(x: jax.Array) -> jax.Array:
  """Sum over the last axis `[n, m] -> [n]` by pairwise (tree) addition: error O(log m) ulps."""
  width = 1 << max(0, (x.shape[1] - 1).bit_length())
  x = jnp.pad(x, ((0, 0), (0, width - x.shape[1])))
  while x.shape[1] > 1:
    half = x.shape[1] // 2
    x = x[:, :half] + x[:, half:]
  return x[:, 0]
