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

Computed in two passes over query chunks: the positive pairs' scores (at most the largest class
of the gallery per query) and the counts; then the K + 1 largest negative scores, kept in a
running top-k across chunks, O(K + chunk x G) memory.
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
  num_query, num_gallery = len(queries["x"]), len(gallery["x"])
  chunk = query_sharding.chunk_size(num_query, query_block or max(8, _CHUNK_ELEMENTS // num_gallery))
  _, class_sizes = np.unique(gallery["labels"], return_counts=True)
  counts = query_sharding.map_query_chunks(_PositivePairs(metric, int(class_sizes.max())), queries, gallery,
                                           chunk=chunk, mesh=mesh)
  num_positive, num_negative = int(counts["num_positive"].sum()), int(counts["num_negative"].sum())
  if not fprs:
    return {}
  if num_positive == 0 or num_negative == 0:
    return {metric_name(f): float("nan") for f in fprs}
  cut = [math.floor(f * num_negative) for f in fprs]
  largest = _largest_negatives(queries, gallery, metric, min(max(cut), num_negative - 1) + 1, chunk)
  positive = counts["positive_scores"][counts["positive_scores"] > -np.inf]
  out = {}
  for f, k in zip(fprs, cut):
    threshold = largest[k] if k < num_negative else -np.inf
    out[metric_name(f)] = float(np.sum(positive > threshold) / num_positive)
  return out


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


def _largest_negatives(queries: dict[str, np.ndarray], gallery: dict[str, np.ndarray], metric: str, k: int,
                       chunk: int) -> np.ndarray:
  """The `k` largest negative-pair scores, descending, by a running top-k over query chunks."""
  num_query = len(queries["x"])
  padded = query_sharding.round_up(num_query, chunk)
  rows = {name: np.concatenate([value, np.zeros((padded - num_query, *value.shape[1:]), value.dtype)])
          for name, value in queries.items()}
  rows["valid"] = np.arange(padded) < num_query
  rows = {name: value.reshape(padded // chunk, chunk, *value.shape[1:]) for name, value in rows.items()}
  return np.asarray(_running_top_k(rows, gallery, metric, k))


@functools.partial(jax.jit, static_argnames=("metric", "k"))
def _running_top_k(rows: dict[str, jax.Array], gallery: dict[str, jax.Array], metric: str, k: int) -> jax.Array:
  g = pairwise.prepare(gallery, metric)

  def step(largest, q):
    q = pairwise.prepare(q, metric)
    _, negative = pair_masks(q, g)
    scores = jnp.where(negative, pairwise.prepared_scores(q, g, metric), -jnp.inf).reshape(-1)
    return jax.lax.top_k(jnp.concatenate([largest, scores]), k)[0], None

  return jax.lax.scan(step, jnp.full((k,), -jnp.inf, jnp.float32), rows)[0]
