"""Random-walk object attention (DeML Sec. 3.1, Eqs. 2-3): a parameter-free map of where the
mass of a random walk over a conv map's positions settles.

Each of the HW positions of a map `U` `[B, H, W, C]` is a node; the edge a -> b weighs the
distance between their features (Eq. 2); each node's outbound weights are normalised to sum to
1; mass starts uniform (1/HW) and flows along the edges T = 10 times (Eq. 3). Mass gathers on
positions unlike the rest of the map: the object. The maps of several layers are resized to the
image and averaged into the object-attention proposal.

The paper writes the update as `M <- D x M` with D's rows (outbound edges) summing to 1; taken
literally that keeps the uniform M uniform (D 1 = 1). The walk the paper describes, mass
"received via inbound and diffused via outbound edges", is `M_b <- sum_a D[a, b] M_a`, i.e.
`M <- D^T M`, whose fixed point is the walk's stationary distribution (the left eigenvector of
D for eigenvalue 1; the paper's Remark: eigenvector centrality). That is what `propagate` does.

The walk carries no gradient (the module is parameter-free and only picks the next crop).
"""
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 10  # T of Eq. 3


def distance_graph(u: jax.Array) -> jax.Array:
  """Eq. 2: `D[a, b] = ||u_a - u_b||`: nodes `[..., N, C]` -> `[..., N, N]` (zero diagonal)."""
  squared = jnp.sum(u * u, axis=-1)
  gram = jnp.einsum("...ac,...bc->...ab", u, u, precision=jax.lax.Precision.HIGHEST)
  d2 = squared[..., :, None] + squared[..., None, :] - 2.0 * gram
  n = u.shape[-2]
  return jnp.where(jnp.eye(n, dtype=bool), 0.0, jnp.sqrt(jnp.maximum(d2, 0.0)))


def transition_matrix(d: jax.Array, valid: jax.Array | None = None) -> jax.Array:
  """Sec. 3.1 after Eq. 2: each row (a node's outbound edges) divided by its sum: `[..., N, N]`
  -> row-stochastic `[..., N, N]`. `valid` bool `[..., N]` marks real nodes (padding has zero
  rows and columns); a node whose outbound weights are all 0 (every feature equal) spreads its
  mass uniformly over the valid nodes."""
  if valid is None:
    valid = jnp.ones(d.shape[:-1], bool)
  valid = valid.astype(d.dtype)
  d = d * valid[..., :, None] * valid[..., None, :]
  total = jnp.sum(d, axis=-1, keepdims=True)
  uniform = valid[..., None, :] / jnp.maximum(jnp.sum(valid, axis=-1)[..., None, None], 1.0)
  return jnp.where(total > 0, d / jnp.where(total > 0, total, 1.0), uniform * valid[..., :, None])


def propagate(p: jax.Array, m: jax.Array, steps: int = STEPS) -> jax.Array:
  """Eq. 3: `steps` random-walk steps `M_b <- sum_a P[a, b] M_a` (`M <- P^T M`): transition
  `[..., N, N]`, mass `[..., N]` -> mass `[..., N]` (the total is kept)."""
  step = lambda _, m: jnp.einsum("...ab,...a->...b", p, m, precision=jax.lax.Precision.HIGHEST)
  return jax.lax.fori_loop(0, steps, step, m)


def random_walk_map(u: jax.Array, steps: int = STEPS) -> jax.Array:
  """Eqs. 2-3 on one map: `U` `[B, H, W, C]` -> `M` `[B, H, W]` (sums to 1 over H, W)."""
  b, h, w, c = u.shape
  nodes = jax.lax.stop_gradient(u).astype(jnp.float32).reshape(b, h * w, c)
  m0 = jnp.full((b, h * w), 1.0 / (h * w), jnp.float32)
  return propagate(transition_matrix(distance_graph(nodes)), m0, steps).reshape(b, h, w)


def _resize_matrix(in_size: int, out_size: int, width: int) -> np.ndarray:
  """The linear map of `jax.image.resize(..., "linear")` along one axis, `[out_size, width]`,
  columns past `in_size` zero (padding)."""
  with jax.ensure_compile_time_eval():
    matrix = np.asarray(jax.image.resize(jnp.eye(in_size, dtype=jnp.float32), (out_size, in_size), "linear"))
  return np.pad(matrix, ((0, 0), (0, width - in_size)))


def object_attention(maps: Sequence[jax.Array], out_size: tuple[int, int], steps: int = STEPS) -> jax.Array:
  """The object-attention proposal (Sec. 3.1 after Eq. 3): the random-walk map of each layer,
  resized (bilinear) to `out_size` and averaged over the layers.

  maps: K arrays `[B, h_k, w_k, C_k]` -> `[B, out_h, out_w]`. The K walks run as one batch: the
  layers are zero-padded to the largest node and channel counts (zero channels leave distances
  unchanged; padded nodes have no edges and no mass), so the `[K, B, N, N]` transition tensor is
  built once; the resize is one einsum with per-layer separable resize matrices.
  """
  b = maps[0].shape[0]
  sizes = [m.shape[1:3] for m in maps]
  n_max = max(h * w for h, w in sizes)
  c_max = max(m.shape[-1] for m in maps)
  h_max, w_max = max(h for h, _ in sizes), max(w for _, w in sizes)
  nodes = jnp.stack([
      jnp.pad(m.astype(jnp.float32).reshape(b, h * w, -1), ((0, 0), (0, n_max - h * w), (0, c_max - m.shape[-1])))
      for m, (h, w) in zip(maps, sizes)])  # [K, B, N, C]
  nodes = jax.lax.stop_gradient(nodes)
  valid = np.stack([np.arange(n_max) < h * w for h, w in sizes])  # [K, N]
  m0 = np.stack([np.where(v, 1.0 / v.sum(), 0.0) for v in valid]).astype(np.float32)
  p = transition_matrix(distance_graph(nodes), jnp.broadcast_to(jnp.asarray(valid)[:, None], nodes.shape[:3]))
  mass = propagate(p, jnp.broadcast_to(jnp.asarray(m0)[:, None], nodes.shape[:3]), steps)  # [K, B, N]
  # Node r * w_k + c of layer k sits at (r, c) of a [h_max, w_max] grid; index n_max is a zero.
  grid = np.full((len(maps), h_max, w_max), n_max)
  for k, (h, w) in enumerate(sizes):
    grid[k, :h, :w] = np.arange(h * w).reshape(h, w)
  mass = jnp.pad(mass, ((0, 0), (0, 0), (0, 1)))
  gridded = jax.vmap(lambda m, g: m[:, g])(mass, jnp.asarray(grid))  # [K, B, h_max, w_max]
  rows = jnp.asarray(np.stack([_resize_matrix(h, out_size[0], h_max) for h, _ in sizes]))
  cols = jnp.asarray(np.stack([_resize_matrix(w, out_size[1], w_max) for _, w in sizes]))
  resized = jnp.einsum("kyh,kbhw,kxw->kbyx", rows, gridded, cols, precision=jax.lax.Precision.HIGHEST)
  return jnp.mean(resized, axis=0)
