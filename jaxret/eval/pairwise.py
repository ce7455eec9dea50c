"""What a (query, gallery item) pair is: its ranking score, whether it is hidden, whether it is relevant.

All three are computed for a block of queries `[n, D]` against a block of gallery items
`[m, D]` inside the jitted evaluation kernels (`knn.py`, `ranking.py`, `hashing.py`), so they
are defined once, here.

Scores: larger is nearer, and every metric is a score with exact ties where the math has them:
- "cosine":    sign(q.g) sqrt((q.g)^2 / (|q|^2 |g|^2)), 0 for a zero vector, after scaling each
               vector by a power of two (exact) to a largest |entry| in [0.5, 1), so that no norm
               overflows. Each term is a sum of products of the entries, so where those are
               exact (integer-valued vectors with (q.g)^2 and |q|^2 |g|^2 below 2^24, e.g. {-1, +1}
               codes of up to 4096 bits) the score is the correctly rounded exact cosine: equal
               cosines tie exactly, collinear vectors of different norms included (query [1, 1, 0]:
               gallery [5, 5, 0] and [1, 1, 0] both score 1.0; q.g / (|q| |g|) gave 1.0 and
               1.0000001). Duplicates tie for any floats; other float vectors of one direction agree
               to rounding only (about 1e-7), as no float formula can make them tie. Normalising
               first does not: it breaks the ties of {-1, +1} codes at equal Hamming distance.
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


def _power_of_two_scaled(x: jax.Array) -> jax.Array:
  """`x` `[n, D]` with each row times the power of two that puts its largest |entry| in [0.5, 1)
  (exact; zero rows stay zero)."""
  _, exponent = jnp.frexp(jnp.max(jnp.abs(x), axis=1, keepdims=True))
  return jnp.ldexp(x, -exponent)


def prepare(vectors: dict[str, jax.Array], metric: str) -> dict[str, jax.Array]:
  """`vectors` with what `prepared_scores` needs of its "x" `[m, D]`, computed once per set:
  "x" power-of-two scaled for "cosine" (see the module docstring), "sq_norm" `[m]` = |x|^2.
  The evaluation kernels prepare the gallery once, outside their loop over query chunks."""
  check_metric(metric)
  x = _power_of_two_scaled(vectors["x"]) if metric == "cosine" else vectors["x"]
  return {**vectors, "x": x, "sq_norm": tree_sum(x * x)}


def tree_sum(x: jax.Array) -> jax.Array:
  """Sum over the last axis `[n, m] -> [n]` by pairwise (tree) addition: error O(log m) ulps, and
  elementwise adds only, so a row's sum never depends on n (a reduction's vectorisation can)."""
  width = 1 << max(0, (x.shape[1] - 1).bit_length())
  x = jnp.pad(x, ((0, 0), (0, width - x.shape[1])))
  while x.shape[1] > 1:
    half = x.shape[1] // 2
    x = x[:, :half] + x[:, half:]
  return x[:, 0]


def scores(q: jax.Array, g: jax.Array, metric: str) -> jax.Array:
  """Ranking scores `[n, m]` (larger is nearer) of queries `q` `[n, D]` against gallery `g` `[m, D]`."""
  return prepared_scores(prepare({"x": q}, metric), prepare({"x": g}, metric), metric)


def prepared_scores(q: dict[str, jax.Array], g: dict[str, jax.Array], metric: str) -> jax.Array:
  """`scores` of `prepare`d queries (n rows) against a `prepare`d gallery (m rows): `[n, m]`.

  cosine: sign(d) sqrt(d^2 / (|q|^2 |g|^2)), d = q.g of the scaled rows; 0 for a zero vector."""
  dot = jnp.matmul(q["x"], g["x"].T, precision=jax.lax.Precision.HIGHEST)
  if metric == "cosine":
    norms = q["sq_norm"][:, None] * g["sq_norm"][None, :]
    s = jnp.sign(dot) * jnp.sqrt(dot * dot / jnp.maximum(norms, jnp.finfo(norms.dtype).tiny))
  elif metric == "euclidean":
    s = -jnp.maximum(q["sq_norm"][:, None] + g["sq_norm"][None, :] - 2.0 * dot, 0.0)
  elif metric == "hamming":
    s = (dot - q["x"].shape[1]) / 2.0
  else:
    raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
  if "rerank_index" in q:
    s = _reranked(q, g, s, metric)
  return _positive_zero(s)


def _reranked(q: dict[str, jax.Array], g: dict[str, jax.Array], s: jax.Array, metric: str) -> jax.Array:
  """Minus Eq. 13 of k-reciprocal re-ranking (`jaxret.eval.rerank`): -((1 - lambda) d_J + lambda
  d^2 / max d^2), from the sparse rows `rerank.neighbourhoods` gives both sides ("rerank_index",
  "rerank_weight"; q also "rerank_scale" and "rerank_lambda" `[n]`; g also "rerank_columns" `[N + 1]`)."""
  jaccard = jaccard_distances(q["rerank_index"], q["rerank_weight"], g["rerank_index"], g["rerank_weight"],
                              g["rerank_columns"].shape[0] - 1)
  original = squared_distances(s, metric) / q["rerank_scale"][:, None]
  lam = q["rerank_lambda"][:, None]
  return -(jaccard * (1.0 - lam) + original * lam)


def _positive_zero(s: jax.Array) -> jax.Array:
  """`s` with -0.0 as +0.0 (`lax.top_k` orders -0 < +0, so equal scores would not tie)."""
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


def squared_distances(scores: jax.Array, metric: str) -> jax.Array:
  """d^2 from `pairwise` scores: Euclidean |q - g|^2, or for "cosine" 2 - 2 cos (the squared
  distance between the unit vectors); +0 for coinciding points."""
  return 0.0 - scores if metric == "euclidean" else 2.0 - 2.0 * scores


def jaccard_distances(q_index: jax.Array, q_weight: jax.Array, g_index: jax.Array, g_weight: jax.Array,
                      num_points: int) -> jax.Array:
  """Eq. 12: `[n, m]` d_J = 1 - s / (2 - s), s = sum_l min(V_q[l], V_g[l]), of sparse rows (ids
  `[n, W]` / `[m, W]`, id `num_points` = empty): the query rows are laid out dense `[n, N + 1]`
  and read at the gallery rows' ids, O(n m W)."""
  n = q_index.shape[0]
  dense = jnp.zeros((n, num_points + 1), q_weight.dtype).at[jnp.arange(n)[:, None], q_index].add(q_weight)
  dense = dense.at[:, num_points].set(0.0)
  shared = jnp.sum(jnp.minimum(dense[:, g_index], g_weight[None]), axis=2)  # [n, m, W] -> [n, m]
  return 1.0 - shared / (2.0 - shared)
