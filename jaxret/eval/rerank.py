"""k-reciprocal re-ranking (Zhong, Zheng, Cao and Li, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), as the authors' `re_ranking` (the version torchreid and
fast-reid ship), with its defaults k1 = 20, k2 = 6, lambda = 0.3.

Over all N = Q + G points (queries and gallery), with d the Euclidean distance (cosine metric: the
Euclidean distance between unit vectors, as fast-reid) and `D[i, j] = d(i, j)^2 / max_k d(i, k)^2`:
1. R(i) = the k1 + 1 nearest points of i by D (i itself included), ties by index.
2. The k-reciprocal set of i: the j in R(i) with i in R(j); a member c's own set (with k1 / 2
   rounded, `round(k1 / 2) + 1` neighbours) joins i's expansion when more than 2/3 of it lies in
   i's set. V[i, j] = exp(-D[i, j]) over the expansion, normalised to sum 1 (Eq. 7-10).
3. Local query expansion: V[i] := mean of V over the k2 nearest points R(i)[:k2] (Eq. 11).
4. Jaccard distance d_J(i, j) = 1 - s / (2 - s), s = sum_l min(V[i, l], V[j, l]) (Eq. 12), and the
   final distance (1 - lambda) d_J + lambda D[i, j] (Eq. 13); lower is nearer.

Ties in step 1 go to the smaller index; the published code's `np.argsort` (an unstable quicksort)
leaves their order unspecified. Where the original holds several dense N x N float32 matrices
(4 N^2 bytes each: 1.6 GB apiece at N = 20,000), jaxret keeps V as sparse rows: `neighbourhoods`
returns at most (k1 + 1) (round(k1 / 2) + 2) entries per point before, and k2 times as many after,
query expansion (the widest row sets the width W), O(N W) memory; the re-ID kernels then score
query chunks against the gallery (`pairwise.prepared_scores` with these fields), O(chunk x G x W)
per kernel call.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxret.eval import inputs, pairwise, query_sharding

K1, K2, LAMBDA = 20, 6, 0.3
_CHUNK_ELEMENTS = 1 << 23


@dataclasses.dataclass(frozen=True)
class Settings:
  """k1 (the k-reciprocal neighbourhood), k2 (the local query expansion), lambda (the weight of
  the original distance in Eq. 13): the published defaults."""
  k1: int = K1
  k2: int = K2
  lam: float = LAMBDA


def neighbourhoods(points: np.ndarray, *, metric: str = "euclidean", k1: int = K1, k2: int = K2,
                   mesh: Mesh | None = None) -> dict[str, np.ndarray]:
  """The sparse rows of V after query expansion (steps 1-3 of the module docstring) of `points`
  `[N, D]`: "rerank_index" int32 `[N, W]` (column ids, N = empty slot), "rerank_weight" float32
  `[N, W]` (0 in empty slots) and "rerank_scale" float32 `[N]` (max_k d(i, k)^2)."""
  if metric not in ("euclidean", "cosine"):
    raise ValueError(f"re-ranking: metric must be 'euclidean' or 'cosine'; got {metric!r}.")
  points = inputs.embeddings("points", points)
  num = len(points)
  if not 1 <= k2 <= k1 + 1 <= num:
    raise ValueError(f"re-ranking: k1={k1}, k2={k2} for {num} points; expected 1 <= k2 <= k1 + 1 <= {num}")
  everyone = {"x": points, "id": np.arange(num, dtype=np.int32)}
  chunk = query_sharding.chunk_size(num, max(8, _CHUNK_ELEMENTS // num))
  first = query_sharding.map_query_chunks(_InitialRanks(metric, k1 + 1), everyone, {"x": points}, chunk=chunk,
                                          mesh=mesh)
  ranked = {**everyone, "rank": first["rank"], "scale": first["scale"]}
  v = query_sharding.map_query_chunks(_Expansions(metric, k1), ranked, ranked, chunk=chunk, mesh=mesh)
  expanded = query_sharding.map_query_chunks(_QueryExpansion(k2, num), {"rank": first["rank"]},
                                             {"index": v["index"], "weight": v["weight"]}, chunk=chunk, mesh=mesh)
  width = max(1, int(expanded["count"].max()))
  return {"rerank_index": expanded["index"][:, :width], "rerank_weight": expanded["weight"][:, :width],
          "rerank_scale": first["scale"]}


@dataclasses.dataclass(frozen=True)
class _InitialRanks:
  """Kernel: each point's max_k d^2 and its `k` nearest points by D (step 1)."""
  metric: str
  k: int

  def prepare(self, q, g):
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q, g):
    d = pairwise.squared_distances(pairwise.prepared_scores(q, g, self.metric), self.metric)  # [n, N]
    scale = jnp.max(d, axis=1)
    _, rank = jax.lax.top_k(-(d / scale[:, None]), self.k)  # ties: smaller index first
    return {"rank": rank.astype(jnp.int32), "scale": scale}


@dataclasses.dataclass(frozen=True)
class _Expansions:
  """Kernel: V's sparse rows before query expansion (step 2): "index" `[n, E]`, "weight" `[n, E]`."""
  metric: str
  k1: int

  def prepare(self, q, g):
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q, g):
    num, half = g["rank"].shape[0], int(np.around(self.k1 / 2.0)) + 1
    forward = q["rank"]                                                            # [n, k1 + 1]
    reciprocal = jnp.any(g["rank"][forward] == q["id"][:, None, None], axis=2)     # i in R(j)
    candidate = g["rank"][forward, :half]                                          # [n, k1 + 1, h]
    candidate_reciprocal = jnp.any(g["rank"][candidate, :half] == forward[:, :, None, None], axis=3)
    in_set = jnp.any((candidate[..., None] == forward[:, None, None, :]) & reciprocal[:, None, None, :], axis=3)
    common = jnp.sum(candidate_reciprocal & in_set, axis=2)
    joins = reciprocal & (3 * common > 2 * jnp.sum(candidate_reciprocal, axis=2))  # |common| > 2/3 |set|
    members = jnp.concatenate(
        [jnp.where(reciprocal, forward, num),
         jnp.where(joins[..., None] & candidate_reciprocal, candidate, num).reshape(forward.shape[0], -1)], axis=1)
    members = jnp.sort(members, axis=1)
    unique = (members < num) & (members != jnp.pad(members[:, :-1], ((0, 0), (1, 0)), constant_values=-1))
    index = jnp.where(unique, members, num)
    scores = jnp.take_along_axis(pairwise.prepared_scores(q, g, self.metric), jnp.minimum(index, num - 1), axis=1)
    d = pairwise.squared_distances(scores, self.metric) / q["scale"][:, None]
    weight = jnp.where(unique, jnp.exp(-d), 0.0)
    return {"index": index, "weight": weight / jnp.sum(weight, axis=1, keepdims=True)}


@dataclasses.dataclass(frozen=True)
class _QueryExpansion:
  """Kernel: V's rows averaged over each point's k2 nearest points (step 3), duplicates summed:
  "index" `[n, k2 E]` (distinct ids first, ascending, then N), "weight", "count" `[n]`."""
  k2: int
  num: int

  def prepare(self, q, g):
    return q, g

  def __call__(self, q, g):
    rows = q["rank"][:, :self.k2]
    n = rows.shape[0]
    index = g["index"][rows].reshape(n, -1)
    weight = g["weight"][rows].reshape(n, -1)
    index, weight = jax.lax.sort((index, weight), dimension=1, num_keys=1)
    starts = index != jnp.pad(index[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    run = jnp.cumsum(starts, axis=1) - 1
    row = jnp.arange(n)[:, None]
    summed = jnp.zeros_like(weight).at[row, run].add(weight)
    run_index = jnp.full_like(index, self.num).at[row, run].min(index)
    present = run_index < self.num
    return {"index": run_index, "weight": jnp.where(present, summed / self.k2, 0.0),
            "count": jnp.sum(present, axis=1)}


def pair_fields(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean", k1: int = K1, k2: int = K2,
                lam: float = LAMBDA, mesh: Mesh | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(query fields, gallery fields) that make `pairwise.prepared_scores` of query `[Q, D]` against
  gallery `[G, D]` minus the re-ranked distance (Eq. 13): `neighbourhoods` of all Q + G points,
  split, with lambda on the queries' side and the column count on the gallery's."""
  if not 0.0 <= lam <= 1.0:
    raise ValueError(f"re-ranking: lambda={lam}; expected a weight in [0, 1]")
  fields = neighbourhoods(np.concatenate([query, gallery]), metric=metric, k1=k1, k2=k2, mesh=mesh)
  num_query, num_points = len(query), len(query) + len(gallery)
  q = {name: value[:num_query] for name, value in fields.items()}
  q["rerank_lambda"] = np.full(num_query, lam, np.float32)
  g = {name: fields[name][num_query:] for name in ("rerank_index", "rerank_weight")}
  g["rerank_columns"] = np.zeros(num_points + 1, np.int8)  # its length carries N to the kernels
  return q, g


def query_block(num_gallery: int, width: int) -> int:
  """Queries per re-ranked kernel call: a `[queries, G, W]` block near 2^23 elements."""
  return max(1, _CHUNK_ELEMENTS // (num_gallery * width))


def reranked_distances(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean", k1: int = K1,
                       k2: int = K2, lam: float = LAMBDA, mesh: Mesh | None = None) -> np.ndarray:
  """The re-ranked distances `[Q, G]` (Eq. 13) of query `[Q, D]` against gallery `[G, D]`, what the
  published `re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda)` returns for Euclidean
  distances; computed in query chunks (the re-ID metrics never hold this matrix)."""
  query, gallery = inputs.embeddings("query", query), inputs.embeddings("gallery", gallery, dim=query.shape[1])
  q, g = pair_fields(query, gallery, metric=metric, k1=k1, k2=k2, lam=lam, mesh=mesh)
  chunk = query_sharding.chunk_size(len(query), query_block(len(gallery), q["rerank_index"].shape[1]))
  out = query_sharding.map_query_chunks(_Distances(metric), {"x": query, **q}, {"x": gallery, **g}, chunk=chunk,
                                        mesh=mesh)
  return out["distance"]


@dataclasses.dataclass(frozen=True)
class _Distances:
  """Kernel: re-ranked distances of a query chunk to the gallery, `[n, G]`."""
  metric: str

  def prepare(self, q, g):
    return pairwise.prepare(q, self.metric), pairwise.prepare(g, self.metric)

  def __call__(self, q, g):
    return {"distance": -pairwise.prepared_scores(q, g, self.metric)}
