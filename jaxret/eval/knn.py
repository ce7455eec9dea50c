"""Exact k nearest neighbours, computed on device in blocks with a running top-k.

For each chunk of queries (sharded over the mesh axis "data", see `query_sharding.py`), a
`lax.scan` walks the gallery in blocks of `block_size` items; each step scores the chunk
against one block (`pairwise.scores`), hides excluded pairs (score -inf) and keeps the k best
of [running top-k, block] with `lax.top_k`. Memory is O(query chunk x gallery block).

Ties are broken by gallery index, smaller index first: `lax.top_k` puts the lower position
first among equal values, the running top-k (earlier blocks, so smaller indices, already in
that order) sits before the block, and a block is in index order.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding


class Neighbours(NamedTuple):
  """Result of `nearest_neighbours`.

  indices: `[Q, k]` int32 gallery indices, nearest first; -1 past the last visible item.
  scores:  `[Q, k]` float32 `pairwise.scores` (cosine similarity, -squared Euclidean distance
           or -Hamming distance); -inf where the index is -1.
  """
  indices: np.ndarray
  scores: np.ndarray


def nearest_neighbours(query: np.ndarray, gallery: np.ndarray | None = None, *, k: int,
                       metric: str = "cosine", exclude_same: tuple[np.ndarray, np.ndarray] | None = None,
                       gallery_valid: np.ndarray | None = None, block_size: int = 4096,
                       query_block: int | None = None, mesh: Mesh | None = None) -> Neighbours:
  """The k nearest gallery items of every query, exactly; ties go to the smaller gallery index.

  Args:
    query: `[Q, D]` embeddings (for "hamming": codes in {-1, +1}, booleans or packed uint8).
    gallery: `[G, D]`; None means the queries are their own gallery and each query never
      returns itself.
    k: neighbours per query, 1 <= k <= G.
    metric: "cosine", "euclidean" or "hamming" (see `pairwise.scores`).
    exclude_same: (query_keys `[Q]` or `[Q, c]`, gallery_keys `[G]` or `[G, c]`) ints: gallery
      item j is never returned for query i when all c keys are equal (e.g. (identity, camera)).
    gallery_valid: `[G]` bool; items marked False are never returned (e.g. re-ID junk).
    block_size: gallery items scored per scan step.
    query_block: queries per kernel call (default 512; memory ~ query_block x block_size floats).
    mesh: mesh with axis "data" over which queries are sharded (default: all devices).
  """
  pairwise.check_metric(metric)
  query = inputs.vectors("query", query, metric)
  if gallery is None:
    if exclude_same is not None:
      raise ValueError("exclude_same needs an explicit gallery; with gallery=None each query "
                       "already excludes only itself.")
    gallery = query
    exclude_same = (np.arange(len(query)), np.arange(len(query)))
  else:
    gallery = inputs.vectors("gallery", gallery, metric, dim=query.shape[1])
  num_gallery = gallery.shape[0]
  if not isinstance(k, (int, np.integer)) or not 1 <= k <= num_gallery:
    raise ValueError(f"k must be an integer in [1, {num_gallery}] (the gallery size); got {k!r}.")
  if block_size < 1:
    raise ValueError(f"block_size must be a positive integer; got {block_size}.")
  block = min(block_size, query_sharding.round_up(num_gallery, 8))
  queries = {"x": query}
  gallery_arrays = {"x": gallery, "valid": inputs.visible("gallery_valid", gallery_valid, n=num_gallery)}
  if exclude_same is not None:
    queries["keys"], gallery_arrays["keys"] = inputs.exclusion_keys(
        "exclude_same", exclude_same, num_query=len(query), num_gallery=num_gallery)
  # Padded gallery rows are zeros with valid = False: never returned.
  out = query_sharding.map_query_chunks(
      _TopK(k=int(k), metric=metric, block=block), queries, gallery_arrays,
      chunk=query_sharding.chunk_size(len(query), query_block or 512), mesh=mesh, gallery_multiple=block)
  return Neighbours(indices=out["indices"], scores=out["scores"])


@dataclasses.dataclass(frozen=True)
class _TopK:
  """Kernel: running top-k of one query chunk over the gallery, scanned in blocks of `block`."""
  k: int
  metric: str
  block: int

  def prepare(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> tuple[dict, dict]:
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """q: prepared "x" `[n, D]`, "sq_norm", "valid" `[n]`, optional "keys" `[n, c]`; g: prepared "x" `[G', D]`,
    "sq_norm", "valid" `[G']`, optional "keys" `[G', c]` with G' a multiple of `block`.
    Returns "indices", "scores" `[n, k]`."""
    chex.assert_rank([q["x"], g["x"]], 2)
    chex.assert_equal_shape_suffix([q["x"], g["x"]], 1)
    chex.assert_is_divisible(g["x"].shape[0], self.block)
    n = q["x"].shape[0]
    num_blocks = g["x"].shape[0] // self.block
    blocks = {name: a.reshape((num_blocks, self.block) + a.shape[1:]) for name, a in g.items()}
    blocks["start"] = jnp.arange(num_blocks, dtype=jnp.int32) * self.block

    def step(carry: tuple[jax.Array, jax.Array], b: dict[str, jax.Array]):
      s = pairwise.prepared_scores(q, b, self.metric)
      s = jnp.where(pairwise.excluded(q.get("keys"), b.get("keys"), b["valid"]), -jnp.inf, s)
      index = jnp.broadcast_to(b["start"] + jnp.arange(self.block, dtype=jnp.int32), s.shape)
      all_scores = jnp.concatenate([carry[0], s], axis=1)
      all_index = jnp.concatenate([carry[1], index], axis=1)
      top, position = jax.lax.top_k(all_scores, self.k)
      return (top, jnp.take_along_axis(all_index, position, axis=1)), None

    init = (jnp.full((n, self.k), -jnp.inf, jnp.float32), jnp.full((n, self.k), -1, jnp.int32))
    (top, index), _ = jax.lax.scan(step, init, blocks)
    found = (top > -jnp.inf) & q["valid"][:, None]
    return {"indices": jnp.where(found, index, -1), "scores": jnp.where(found, top, -jnp.inf)}

