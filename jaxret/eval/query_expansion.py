"""Average query expansion, alpha-weighted (alpha-QE; Radenovic, Tolias and Chum, TPAMI 2019), as
fast-reid's `aqe(query_feat, gallery_feat, qe_times=1, qe_k=10, alpha=3.0)`.

Over all N = Q + G embeddings x_i, `times` times: with c(i, j) the cosine similarity and K(i) the
k points of largest c(i, .) (i itself included; ties to the smaller index, where fast-reid's
`np.argpartition` leaves them unspecified), each x_i becomes
`(1 / k) sum_{j in K(i)} c(i, j)^alpha x_j`.
Queries and gallery are then scored as usual. Computed in chunks of points: O(chunk x N) memory.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding

_CHUNK_ELEMENTS = 1 << 23


@dataclasses.dataclass(frozen=True)
class Settings:
  """fast-reid's defaults: the k nearest points, the power alpha of their weights, rounds."""
  k: int = 10
  alpha: float = 3.0
  times: int = 1


def expanded(query: np.ndarray, gallery: np.ndarray, settings: Settings = Settings(), *,
             mesh: Mesh | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(query `[Q, D]`, gallery `[G, D]`) after `settings.times` rounds of alpha-QE (module docstring)."""
  points = np.concatenate([inputs.embeddings("query", query),
                           inputs.embeddings("gallery", gallery, dim=np.shape(query)[1])])
  if not 1 <= settings.k <= len(points) or settings.times < 1:
    raise ValueError(f"query expansion: k={settings.k}, times={settings.times} for {len(points)} points; "
                     f"expected 1 <= k <= {len(points)} and times >= 1")
  chunk = query_sharding.chunk_size(len(points), max(8, _CHUNK_ELEMENTS // len(points)))
  kernel = _Expand(settings.k, float(settings.alpha))
  for _ in range(settings.times):
    points = query_sharding.map_query_chunks(kernel, {"x": points}, {"x": points}, chunk=chunk, mesh=mesh)["x"]
  return points[:len(query)], points[len(query):]


@dataclasses.dataclass(frozen=True)
class _Expand:
  """Kernel: one round of alpha-QE for a chunk of points against all of them."""
  k: int
  alpha: float

  def prepare(self, q, g):
    return q, g

  def __call__(self, q, g):
    similarity = pairwise.scores(q["x"], g["x"], "cosine")  # [n, N]
    top, index = jax.lax.top_k(similarity, self.k)           # ties: smaller index first
    weighted = g["x"][index] * (top ** self.alpha)[..., None]  # [n, k, D]
    return {"x": jnp.sum(weighted, axis=1) / self.k}
