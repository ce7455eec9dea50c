"""The rank of every relevant gallery item per query, without sorting the gallery.

For class-id labels the relevant items of a query are the gallery items of its class, known
before any score: `class_members` lists them per class on the host. For each query chunk the
kernel scores the whole gallery (`pairwise.scores`), takes the R visible relevant items of
each query as thresholds, sorted in ranking order (score descending, ties: smaller gallery
index first), and finds for every visible gallery item k

  p_k = number of thresholds strictly before k in that order.

Every relevant item m (1-based position among the thresholds) has p = m - 1 and every other
item before it has p <= m - 1, so with h[p] the number of visible items of each p,

  rank of the m-th relevant item = h[0] + ... + h[m - 1].

The search for p_k costs O(1) per gallery item when thresholds are apart: a uniform grid of
cells over the thresholds' score range gives, per cell, how many thresholds lie in higher cells
(all of them before k) and which thresholds share the cell; a branchless binary search, as many
steps as the fullest cell of the chunk needs (one for distinct float scores, up to log2(R) for
many equal scores), compares k with those by (score, index). The result is exact: the same
ranks as a stable sort of the row (`ranking._RankingStats`), at a few gathers per gallery item.
"""
from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.eval import pairwise

# Grid cells per threshold slot: enough that distinct float scores rarely share a cell.
_CELLS_PER_SLOT = 8


def class_members(query_labels: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Gallery indices of each query's class, for the kernel.

  Args:
    query_labels: `[Q]` int class ids; gallery_labels: `[G]` int class ids.

  Returns:
    (members `[C, R_max]` int32: row c lists, in index order, the gallery items of the c-th
     class present among the queries, padded with G (all G when the gallery has none),
     member_row `[Q]` int32: each query's row).
  """
  num_gallery = len(gallery_labels)
  classes, query_row = np.unique(query_labels, return_inverse=True)
  order = np.argsort(gallery_labels, kind="stable")
  sorted_labels = gallery_labels[order]
  starts = np.searchsorted(sorted_labels, classes, side="left")
  counts = np.searchsorted(sorted_labels, classes, side="right") - starts
  width = max(1, int(counts.max()))
  slot = np.arange(width)
  take = starts[:, None] + slot[None, :]
  present = slot[None, :] < counts[:, None]
  members = np.where(present, order[np.minimum(take, num_gallery - 1)], num_gallery)
  return members.astype(np.int32), query_row.astype(np.int32).reshape(-1)


@dataclasses.dataclass(frozen=True)
class RelevantRanks:
  """Kernel: ranks of the visible relevant items of one query chunk, in ranking order."""
  metric: str

  def prepare(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> tuple[dict, dict]:
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """q: prepared "x" `[n, D]`, "sq_norm", "member_row" `[n]`, "valid" `[n]`, optional "keys"; g: prepared "x"
    `[G, D]`, "sq_norm", "valid" `[G]`, "members" `[C, R]`, optional "keys".

    Returns "ranks" `[n, R]` int32: the 1-based ranks of the query's visible relevant items,
    ascending, then zeros; "num_relevant" `[n]` int32: how many there are.
    """
    chex.assert_rank([q["x"], g["x"], g["members"]], 2)
    chex.assert_equal_shape_suffix([q["x"], g["x"]], 1)
    num_gallery = g["x"].shape[0]
    slots = g["members"].shape[1]
    hidden = pairwise.excluded(q.get("keys"), g.get("keys"), g["valid"]) | ~q["valid"][:, None]
    s = pairwise.prepared_scores(q, g, self.metric)
    index = jnp.arange(num_gallery, dtype=jnp.int32)[None, :]

    members = g["members"][q["member_row"]]
    at = jnp.minimum(members, num_gallery - 1)
    is_threshold = (members < num_gallery) & ~jnp.take_along_axis(hidden, at, axis=1)
    # Ranking order (score descending, index ascending); the non-thresholds go last.
    _, threshold_index = jax.lax.sort(
        (jnp.where(is_threshold, -jnp.take_along_axis(s, at, axis=1), jnp.inf),
         jnp.where(is_threshold, members, num_gallery)), dimension=1, num_keys=2)
    num_relevant = jnp.sum(is_threshold, axis=1, dtype=jnp.int32)
    real = jnp.arange(slots)[None, :] < num_relevant[:, None]
    at = jnp.minimum(threshold_index, num_gallery - 1)
    threshold_score = jnp.take_along_axis(s, at, axis=1)

    cell = self._cells(s, threshold_score, real, cells=_CELLS_PER_SLOT * slots)
    threshold_cell = jnp.where(real, jnp.take_along_axis(cell, at, axis=1), -1)
    per_cell = _row_histogram(threshold_cell + 1, real.astype(jnp.int32), size=_CELLS_PER_SLOT * slots + 3)
    higher = num_relevant[:, None] - jnp.cumsum(per_cell, axis=1)      # thresholds in cells > c
    first = _row_take(higher, cell + 1)                                # [n, G]: p_k lower bound
    end = first + _row_take(per_cell, cell + 1)                        # after k's cell's thresholds

    def search(steps: int) -> jax.Array:
      """p `[n, G]` by a branchless binary search of `steps` halvings inside k's cell (unrolled,
      so XLA fuses it into one pass over the gallery)."""
      p = first
      for i in reversed(range(steps)):
        candidate = p + (1 << i)                                       # tests threshold slot candidate - 1
        at_slot = jnp.minimum(candidate - 1, slots - 1)
        t = _row_take(threshold_score, at_slot)
        t_index = _row_take(threshold_index, at_slot)
        before = (t > s) | ((t == s) & (t_index < index))
        p = jnp.where((candidate <= end) & before, candidate, p)
      return p

    # As many halvings as the fullest cell of the chunk needs: 1 for distinct scores, more for ties.
    steps_needed = _bit_length(jnp.max(per_cell))
    p = jax.lax.switch(steps_needed, [lambda steps=steps: search(steps)
                                      for steps in range(slots.bit_length() + 1)])
    p = jnp.where(hidden, slots, p)
    ranks = jnp.cumsum(_row_histogram(p, jnp.ones_like(p), size=slots + 1)[:, :slots], axis=1)
    return {"ranks": jnp.where(real, ranks, 0), "num_relevant": num_relevant}

  @staticmethod
  def _cells(s: jax.Array, threshold_score: jax.Array, real: jax.Array, *, cells: int) -> jax.Array:
    """`[n, G]` int32 grid cell of every score: -1 below the lowest threshold, 0..cells inside
    the thresholds' range (uniform), cells + 1 above it; non-decreasing in the score."""
    lo = jnp.min(jnp.where(real, threshold_score, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(real, threshold_score, -jnp.inf), axis=1, keepdims=True)
    width = hi - lo
    # Finite, so that (s - lo) * scale is never 0 * inf.
    scale = jnp.where(width > 0, jnp.minimum(cells / jnp.where(width > 0, width, 1.0), jnp.finfo(s.dtype).max), 0.0)
    position = jnp.floor((s - jnp.where(jnp.isfinite(lo), lo, 0.0)) * scale)
    cell = jnp.clip(position, 0, cells).astype(jnp.int32)
    return jnp.where(s < lo, -1, jnp.where(s > hi, cells + 1, cell))


def _row_take(table: jax.Array, at: jax.Array) -> jax.Array:
  """`table[i, at[i, j]]` `[n, m]` for a small `table` `[n, t]` and `at` in [0, t): one flat gather
  (`take_along_axis` builds an `[n, m, 2]` index array first)."""
  rows = table.shape[1] * jnp.arange(table.shape[0], dtype=jnp.int32)[:, None]
  return table.reshape(-1)[at + rows]


def _row_histogram(bins: jax.Array, weights: jax.Array, *, size: int) -> jax.Array:
  """`[n, size]` int32 per-row sums of `weights` `[n, m]` into `bins` `[n, m]` (values in [0, size))."""
  n = bins.shape[0]
  flat = (bins + size * jnp.arange(n, dtype=jnp.int32)[:, None]).reshape(-1)
  return jnp.zeros(n * size, jnp.int32).at[flat].add(weights.reshape(-1), mode="drop").reshape(n, size)


def _bit_length(x: jax.Array) -> jax.Array:
  """Number of binary digits of a non-negative int32 (0 for 0)."""
  return 32 - jax.lax.clz(x.astype(jnp.int32))
