"""Runs an evaluation kernel over chunks of queries sharded on the "data" axis of a device mesh.

Layout: the Q queries are padded (with zero rows, never duplicates) to a multiple of
`chunk * devices`, a boolean `valid` `[Q_padded]` marks the real ones, and the padded rows are
split over the mesh axis "data" with `NamedSharding(mesh, P("data"))`. Gallery arrays are
replicated (`P()`). On each device, `lax.map` runs `kernel(query_chunk, gallery)` on one chunk
of `chunk` queries at a time, so device memory is bounded by what the kernel needs for one
chunk, never `Q x G`. Results come back to the host cut to the Q real queries.

The chunk size depends on the query count only, never on the number of devices, and a query's
position inside its chunk is its global index modulo `chunk`: every kernel call sees the same
inputs on one device as on many, so sharded results equal one-device results bit for bit.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Protocol

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxret.mesh import DATA_AXIS, make_mesh as data_mesh



class Kernel(Protocol):
  """An evaluation kernel: hashable (a frozen dataclass), so compiled code is reused across calls."""

  def prepare(self, queries: dict[str, jax.Array],
              gallery: dict[str, jax.Array]) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """What the kernel needs of all the device's queries and of the gallery (e.g.
    `pairwise.prepare`), computed once per device before the loop over chunks."""

  def __call__(self, queries: dict[str, jax.Array], gallery: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The kernel's outputs `[chunk, ...]` for one query chunk against the prepared gallery."""


def chunk_size(num_queries: int, query_block: int) -> int:
  """Queries per kernel call: `query_block`, or fewer (a multiple of 8) when there are fewer queries."""
  if query_block < 1:
    raise ValueError(f"query_block must be a positive integer; got {query_block}.")
  return max(1, min(query_block, round_up(num_queries, 8)))


def map_query_chunks(kernel: Kernel, queries: Mapping[str, np.ndarray],
                     gallery: Mapping[str, np.ndarray], *, chunk: int, mesh: Mesh | None = None,
                     gallery_multiple: int = 1) -> dict[str, np.ndarray]:
  """Returns `kernel(query_chunk, gallery)` for all queries, concatenated: arrays `[Q, ...]`.

  Args:
    kernel: see `Kernel`; called with `query_chunk` = {name: `[chunk, ...]`} plus "valid"
      `[chunk]` bool, and the gallery (replicated), both after `kernel.prepare`; returns
      {name: `[chunk, ...]`}.
    queries: {name: `[Q, ...]`} host arrays, all with the same Q >= 1.
    gallery: {name: `[G, ...]`} host arrays, replicated on every device.
    chunk: queries per kernel call (see `chunk_size`).
    mesh: a mesh with an axis "data" (default: `data_mesh()`).
    gallery_multiple: gallery arrays are zero-padded to a multiple of this many rows (on the
      way to the devices, without a padded host copy).
  """
  mesh = data_mesh() if mesh is None else mesh
  if DATA_AXIS not in mesh.axis_names:
    raise ValueError(f"mesh must have an axis named {DATA_AXIS!r}; got axes {mesh.axis_names}.")
  counts = {name: x.shape[0] for name, x in queries.items()}
  num = next(iter(counts.values()))
  if num < 1 or any(c != num for c in counts.values()):
    raise ValueError(f"query arrays must share one non-zero leading size; got {counts}.")
  padded = round_up(num, chunk * mesh.shape[DATA_AXIS])
  sharded = NamedSharding(mesh, P(DATA_AXIS))
  query_arrays = {name: _put_rows(x, padded, sharded) for name, x in queries.items()}
  query_arrays["valid"] = _put_rows(np.ones(num, bool), padded, sharded)
  replicated = NamedSharding(mesh, P())
  gallery_arrays = {name: _put_rows(x, round_up(x.shape[0], gallery_multiple), replicated)
                    for name, x in gallery.items()}
  out = _run(kernel, mesh, chunk, *_prepare(kernel, mesh, query_arrays, gallery_arrays))
  return {name: _to_host(x)[:num] for name, x in out.items()}


def _put_rows(x: np.ndarray, rows: int, sharding: NamedSharding) -> jax.Array:
  """`x` zero-padded to `rows` rows as a global array; only one shard is built on the host at a time."""
  x = np.asarray(x)

  def shard(index: tuple[slice, ...]) -> np.ndarray:
    start, stop, _ = index[0].indices(rows)
    part = x[min(start, x.shape[0]):min(stop, x.shape[0])][(slice(None),) + tuple(index[1:])]
    if part.shape[0] == stop - start:
      return part
    pad = np.zeros((stop - start - part.shape[0],) + part.shape[1:], x.dtype)
    return np.concatenate([part, pad])

  return jax.make_array_from_callback((rows,) + x.shape[1:], sharding, shard)


def _to_host(x: jax.Array) -> np.ndarray:
  """A global array as one host NumPy array (gathered across processes when needed)."""
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=(2, 3))
def _prepare(kernel: Kernel, mesh: Mesh, queries: dict[str, jax.Array],
             gallery: dict[str, jax.Array]) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """`kernel.prepare` on each device, in its own program: the prepared arrays take the place of
  the donated inputs (of `map_query_chunks`'s own making), so the raw copies do not stay alive
  beside them during the search."""
  return jax.shard_map(kernel.prepare, mesh=mesh, in_specs=(P(DATA_AXIS), P()), out_specs=(P(DATA_AXIS), P()),
                       check_vma=False)(queries, gallery)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run(kernel: Kernel, mesh: Mesh, chunk: int, queries: dict[str, jax.Array],
         gallery: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Per device: `lax.map` of `kernel` over the local prepared queries split into chunks of `chunk`."""

  def local(q: dict[str, jax.Array], g: dict[str, jax.Array]) -> dict[str, jax.Array]:
    rows = q["valid"].shape[0]
    chunks = jax.tree.map(lambda a: a.reshape((rows // chunk, chunk) + a.shape[1:]), q)
    out = jax.lax.map(lambda c: kernel(c, g), chunks)
    return jax.tree.map(lambda a: a.reshape((rows,) + a.shape[2:]), out)

  return jax.shard_map(local, mesh=mesh, in_specs=(P(DATA_AXIS), P()), out_specs=P(DATA_AXIS),
                       check_vma=False)(queries, gallery)


def round_up(n: int, multiple: int) -> int:
  """The smallest multiple of `multiple` that is >= n."""
  return -(-n // multiple) * multiple

