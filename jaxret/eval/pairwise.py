"""What a (query, gallery item) pair is: its ranking score, whether it is hidden, whether it is relevant.

All three are computed for a block of queries `[n, D]` against a block of gallery items
`[m, D]` inside the jitted evaluation kernels (`knn.py`, `ranking.py`, `hashing.py`), so they
are defined once, here.

Scores: larger is nearer, and every metric is a score with exact ties where the math has them:
- "cosine":    q.g / (max(|q|, 1e-12) * max(|g|, 1e-12)); the dot product is taken on the raw
               vectors, so duplicates (and integer-valued vectors) tie exactly.
- "euclidean": -|q - g|^2 = -(|q|^2 + |g|^2 - 2 q.g), clamped to <= 0 (ranking by it is ranking
               by Euclidean distance).
- "hamming":   -(Hamming distance) = (q.g - bits) / 2 for codes in {-1, +1}; exact integers.
Negative zero is mapped to +0 so that `lax.top_k` (which orders -0 < +0) sees ties.
The dot product runs at `Precision.HIGHEST` (no TF32/bf16 passes on accelerators).
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

Metric = Literal["cosine", "euclidean", "hamming"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "hamming")


def check_metric(metric: str) -> None:
  """Raises ValueError unless `metric` is one of METRICS."""
  if metric not in METRICS:
    raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")


def scores(q: jax.Array, g: jax.Array, metric: str) -> jax.Array:
  """Ranking scores `[n, m]` (larger is nearer) of queries `q` `[n, D]` against gallery `g` `[m, D]`."""
  dot = jnp.matmul(q, g.T, precision=jax.lax.Precision.HIGHEST)
  if metric == "cosine":
    q_norm = jnp.maximum(jnp.linalg.norm(q, axis=1), 1e-12)
    g_norm = jnp.maximum(jnp.linalg.norm(g, axis=1), 1e-12)
    s = dot / (q_norm[:, None] * g_norm[None, :])
  elif metric == "euclidean":
    sq = jnp.sum(q * q, axis=1)[:, None] + jnp.sum(g * g, axis=1)[None, :] - 2.0 * dot
    s = -jnp.maximum(sq, 0.0)
  elif metric == "hamming":
    s = (dot - q.shape[1]) / 2.0
  else:
    raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
  return jnp.where(s == 0, 0.0, s)


def excluded(query_keys: jax.Array | None, gallery_keys: jax.Array | None,
             gallery_valid: jax.Array) -> jax.Array:
  """Bool `[n, m]` (`[1, m]` when no keys are given): gallery item j is hidden from query i.

  j is hidden iff `gallery_valid[j]` is False (padding, re-ID junk) or, when keys are given,
  every column of `query_keys[i]` `[n, c]` equals `gallery_keys[j]` `[m, c]` (c = 1 with the
  item's index: the query itself; c = 2 with (identity, camera): re-ID same-camera matches).
  """
  hidden = ~gallery_valid[None, :]
  if query_keys is not None:
    same = jnp.all(query_keys[:, None, :] == gallery_keys[None, :, :], axis=-1)
    hidden = hidden | same
  return hidden


def relevant(query_labels: jax.Array, gallery_labels: jax.Array) -> jax.Array:
  """Bool `[n, m]`: same class (int labels `[n]`, `[m]`) or a shared label (multi-hot `[n, L]`, `[m, L]`)."""
  if query_labels.ndim == 1:
    return query_labels[:, None] == gallery_labels[None, :]
  overlap = jnp.matmul(query_labels.astype(jnp.float32), gallery_labels.astype(jnp.float32).T,
                       precision=jax.lax.Precision.HIGHEST)
  return overlap > 0
