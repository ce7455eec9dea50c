"""Verification rates: TPR at a fixed FPR over all (query, gallery item) pairs, from the pair scores.

The pairs are those the ranking protocol sees (hidden pairs excluded: the query itself, re-ID junk
and same-camera matches); a pair is positive when the two share a label. Accepting the pairs whose
score exceeds a threshold t, FPR(t) is the fraction of negative pairs accepted and TPR(t) that of
positive pairs. TPR@FPR=f is the largest TPR of a threshold with FPR <= f: with N- negative pairs
and K = floor(f N-), t is the (K + 1)-th largest negative score (every negative pair when
K >= N-) and TPR = #{positive pairs with score > t} / N+ (strictly greater: a tie with t would
accept the (K + 1)-th negative). This is the ROC of fast-reid's `evaluate_roc` and the FNMR@FMR of
open-metric-learning (FNMR = 1 - TPR), read at an exact operating point rather than the ROC
point nearest to f.

Computed over query chunks: one pass for the positive pairs' scores (at most the largest class of
the gallery per query) and the counts, then two passes of a radix select that find the (K + 1)-th
largest negative score of every rate exactly from histograms of the scores' bits
(`_negative_scores_at`), O(rates x chunk x G + rates x 65,536) memory whatever K is.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh

from jaxret import protocols
from jaxret.eval import pairwise, query_sharding

FPRS: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
_CHUNK_ELEMENTS = 1 << 23


metric_name = protocols.tpr_name  # "tpr@fpr=1e-04" for 1e-4


def tpr_at_fpr(queries: dict[str, np.ndarray], gallery: dict[str, np.ndarray], *, metric: str,
               fprs: tuple[float, ...] = FPRS, query_block: int | None = None,
               mesh: Mesh | None = None) -> dict[str, float]:
  """{`metric_name(f)`: TPR@FPR=f} (module docstring; NaN without positive or negative pairs).

  Args:
    queries: "x" `[Q, D]`, "labels" `[Q]` int, optional "keys" `[Q, c]` and pair fields
      (`rerank.pair_fields`), as `ranking.pair_arrays` builds them.
    gallery: "x" `[G, D]`, "labels" `[G]`, "valid" `[G]` bool, optional "keys" and pair fields.
    metric: "cosine", "euclidean" or "hamming".
    fprs: the false positive rates, each in (0, 1].
    query_block: queries per kernel call; mesh: the first pass's (the second runs on one device).
  """
  if any(not 0.0 < f <= 1.0 for f in fprs):
    raise ValueError(f"fprs={fprs}: expected rates in (0, 1]")
  if not fprs:
    return {}
  num_query, num_gallery = len(queries["x"]), len(gallery["x"])
  chunk = query_sharding.chunk_size(num_query, query_block or max(8, _CHUNK_ELEMENTS // num_gallery))
  _, class_sizes = np.unique(gallery["labels"], return_counts=True)
  counts = query_sharding.map_query_chunks(_PositivePairs(metric, int(class_sizes.max())), queries, gallery,
                                           chunk=chunk, mesh=mesh)
  num_positive, num_negative = int(counts["num_positive"].sum()), int(counts["num_negative"].sum())
  if num_positive == 0 or num_negative == 0:
    return {metric_name(f): float("nan") for f in fprs}
  positive = counts["positive_scores"][counts["positive_scores"] > -np.inf]
  ranks = {f: math.floor(f * num_negative) + 1 for f in fprs}  # K + 1
  inside = sorted({rank for rank in ranks.values() if rank <= num_negative})  # past the last: accept every pair
  thresholds = dict(zip(inside, _negative_scores_at(queries, gallery, metric, inside, chunk)))
  return {metric_name(f): float(np.sum(positive > thresholds.get(rank, -np.inf)) / num_positive)
          for f, rank in ranks.items()}


def pair_masks(q: dict[str, jax.Array], g: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """(positive, negative) bool `[n, G]` of the visible pairs of a prepared query chunk."""
  hidden = pairwise.excluded(q.get("keys"), g.get("keys"), g["valid"]) | ~q["valid"][:, None]
  same = pairwise.relevant(q["labels"], g["labels"])
  return same & ~hidden, ~same & ~hidden


@dataclasses.dataclass(frozen=True)
class _PositivePairs:
  """Kernel: "positive_scores" `[n, P]` (-inf padded), "num_positive", "num_negative" `[n]`."""
  metric: str
  slots: int

  def prepare(self, q, g):
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q, g):
    positive, negative = pair_masks(q, g)
    s = pairwise.prepared_scores(q, g, self.metric)
    top, _ = jax.lax.top_k(jnp.where(positive, s, -jnp.inf), min(self.slots, s.shape[1]))
    return {"positive_scores": top, "num_positive": jnp.sum(positive, axis=1),
            "num_negative": jnp.sum(negative, axis=1)}


def _negative_scores_at(queries: dict[str, np.ndarray], gallery: dict[str, np.ndarray], metric: str,
                        ranks: list[int], chunk: int) -> list[float]:
  """The `ranks`-th largest negative-pair scores (1-based, ties counted), exactly, by a radix select
  on the scores' order-preserving 32-bit keys, in two scoring passes whatever the number of ranks:
  a histogram of the top 16 bits over all negative pairs finds the bucket holding each rank, then
  histograms of the low 16 bits inside those buckets the keys. The per-chunk histograms are summed
  on the host in int64."""
  if not ranks:
    return []
  num_query = len(queries["x"])
  padded = query_sharding.round_up(num_query, chunk)
  rows = {name: np.concatenate([value, np.zeros((padded - num_query, *value.shape[1:]), value.dtype)])
          for name, value in queries.items()}
  rows["valid"] = np.arange(padded) < num_query
  prepared = pairwise.prepare(jax.device_put(gallery), metric)

  def histograms(buckets: jax.Array | None) -> np.ndarray:
    counts = 0
    for start in range(0, padded, chunk):
      q = {name: value[start:start + chunk] for name, value in rows.items()}
      counts = counts + np.asarray(_key_histograms(q, prepared, metric, buckets), np.int64)
    return counts

  top = [_select(histograms(None)[0], rank) for rank in ranks]  # (bucket, rank inside it)
  buckets = sorted({bucket for bucket, _ in top})
  low = dict(zip(buckets, histograms(jnp.asarray(buckets))))
  return [float(np.asarray(_score_of_key(np.uint32(bucket << 16 | _select(low[bucket], rank)[0]))))
          for bucket, rank in top]


def _select(counts: np.ndarray, rank: int) -> tuple[int, int]:
  """(bucket, rank inside it) of the `rank`-th largest of the values counted in `counts` `[65536]`."""
  above = np.cumsum(counts[::-1])  # values in this bucket or higher ones
  bucket = (1 << 16) - 1 - int(np.searchsorted(above, rank))
  return bucket, rank - (int(above[(1 << 16) - 2 - bucket]) if bucket < (1 << 16) - 1 else 0)


def _keys(scores: jax.Array) -> jax.Array:
  """float32 -> uint32 keys in the same order (-0 and +0 are one score here: pairwise maps -0 to +0)."""
  bits = jax.lax.bitcast_convert_type(scores, jnp.int32)
  ordered = jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)
  return jax.lax.bitcast_convert_type(ordered, jnp.uint32) ^ jnp.uint32(0x80000000)


def _score_of_key(key: np.uint32) -> jax.Array:
  """The inverse of `_keys` for one key."""
  ordered = jax.lax.bitcast_convert_type(jnp.uint32(key) ^ jnp.uint32(0x80000000), jnp.int32)
  bits = jnp.where(ordered < 0, ordered ^ jnp.int32(0x7FFFFFFF), ordered)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


@functools.partial(jax.jit, static_argnames=("metric",))
def _key_histograms(q: dict[str, jax.Array], g: dict[str, jax.Array], metric: str,
                    buckets: jax.Array | None) -> jax.Array:
  """int32 `[1, 65536]`: the negative pairs of a query chunk by the top 16 bits of their keys; or
  with distinct `buckets` `[R]`, `[R, 65536]`: those whose top 16 bits are bucket r, by the low
  16 bits (a chunk has < 2^31 pairs)."""
  q = pairwise.prepare(q, metric)
  _, negative = pair_masks(q, g)
  keys = _keys(pairwise.prepared_scores(q, g, metric))
  top, low = (keys >> 16).astype(jnp.int32), (keys & 0xFFFF).astype(jnp.int32)
  if buckets is None:
    return jnp.zeros((1, 1 << 16), jnp.int32).at[0, top].add(negative.astype(jnp.int32))
  matches = top[None] == buckets[:, None, None]  # [R, n, G]; distinct buckets: at most one per pair
  counted = negative & jnp.any(matches, axis=0)
  row = jnp.argmax(matches, axis=0)
  return jnp.zeros((len(buckets), 1 << 16), jnp.int32).at[row, low].add(counted.astype(jnp.int32))  # one scatter
