"""ADSH's closed-form update of the database codes: discrete cyclic coordinate descent (DCC).

Asymmetric deep supervised hashing (Jiang & Li, AAAI 2018; A2-Net's Eqs. 11 and 13 follow it)
keeps a code `z_j` in {-1, +1}^k for every database (training) image j and, with the network's
outputs `U` `[n, k]` for a sampled query subset Omega fixed, solves

  min_Z  sum_{i in Omega} sum_{j} (u_i^T z_j - k S_ij)^2 + gamma sum_{i in Omega} ||z_i - u_i||^2

one bit (column of Z) at a time. Written `||U Z^T - k S||^2 + gamma ||Z_Omega - U||^2`, this is
`||Z U^T||^2 + tr(Z Q^T) + const` with `Q = -2k S^T U - 2 gamma U_bar` (`U_bar` `[m, k]`: u_i on
the rows of Omega, 0 elsewhere). With the other bits fixed, the best column c is

  z_c = -sign(2 Z_hat U_hat^T u_c + q_c)

(`Z_hat`, `U_hat` without column c): each step minimises the objective exactly over its column,
so the objective never increases. Bits are sequential by definition, so the sweep is a
`lax.fori_loop` over bits inside one jitted function.

Shapes: m database rows, k bits. S is never formed as an `[n, m]` matrix: with class labels,
`S_ij = 1` for the same class and `s_d` otherwise (-1 in the paper, `-r` with ADSH's public
code's soft constraint) gives `(S^T U)_j = (1 - s_d) (sum of u_i over Omega with y_i = y_j) +
s_d sum_i u_i`, an `[m, k]` product in O(m k) memory. Rows whose label is still unknown (-1: not yet seen by the
training stream) are left as they are and are not in the objective.
"""
import functools

import jax
import jax.numpy as jnp


def similarity_transpose_times(outputs: jax.Array, in_query: jax.Array, labels: jax.Array,
                               num_classes: int, dissimilar=-1.0) -> jax.Array:
  """`S^T U` `[m, k]` for `S_ij = 1` if `y_i = y_j` else `dissimilar`, i over the query rows
  (`in_query`), j over all m rows (0 where `labels` is -1): outputs `[m, k]`, in_query bool `[m]`,
  labels int32 `[m]`."""
  u = jnp.where(in_query[:, None], outputs, 0.0)
  per_class = jax.ops.segment_sum(u, jnp.maximum(labels, 0), num_segments=num_classes)  # [C, k]
  st_u = (1.0 - dissimilar) * per_class[jnp.maximum(labels, 0)] + dissimilar * jnp.sum(u, axis=0)
  return jnp.where(labels[:, None] >= 0, st_u, 0.0)


def update_code_bit(codes: jax.Array, bit: jax.Array, gram: jax.Array, q: jax.Array,
                    known: jax.Array) -> jax.Array:
  """One DCC step: column `bit` of `codes` `[m, k]` set to `-sign(2 Z_hat U_hat^T u_c + q_c)`
  (+1 where the argument is 0) on the `known` rows; `gram` = `U^T U` `[k, k]` over Omega,
  `q` = Q `[m, k]`."""
  z_c = codes[:, bit]
  u_hat_u_c = gram[:, bit]
  # Z_hat U_hat^T u_c = Z (U^T u_c) - z_c (u_c^T u_c): all columns, then column c taken back out.
  cross = codes @ u_hat_u_c - z_c * gram[bit, bit]
  new_column = jnp.where(2.0 * cross + q[:, bit] > 0, -1.0, 1.0)
  return codes.at[:, bit].set(jnp.where(known, new_column, z_c))


@functools.partial(jax.jit, static_argnames="num_classes")
def update_database_codes(codes: jax.Array, outputs: jax.Array, in_query: jax.Array, labels: jax.Array,
                          code_length: jax.Array, gamma: jax.Array, dissimilar=-1.0, *,
                          num_classes: int | None = None) -> jax.Array:
  """The DCC sweep over all bits (module docstring), one jitted function.

  Args:
    codes: Z `[m, k]`, in {-1, +1} (0 for rows never assigned).
    outputs: `[m, k]`, the network output u_i = tanh(W x_i) of each query row (others unused).
    in_query: bool `[m]`, the rows of Omega.
    labels: int32 `[m]`, class of each row, -1 when unknown (the row is left unchanged).
    code_length: the k multiplying S (A2-Net Eq. 13, ADSH).
    gamma: weight of ADSH's `||Z_Omega - U||^2` (0: A2-Net's Eq. 13 has no such term).
    dissimilar: S of a dissimilar pair (-1 in the paper; see `jaxret.losses.hashing.balanced_dissimilarity`).
    num_classes: number of label values (default: m, enough for any labels < m).

  Returns: the updated Z `[m, k]` (float32).
  """
  codes = codes.astype(jnp.float32)
  outputs = outputs.astype(jnp.float32)
  u = jnp.where(in_query[:, None], outputs, 0.0)
  num_classes = codes.shape[0] if num_classes is None else num_classes
  st_u = similarity_transpose_times(outputs, in_query, labels, num_classes, dissimilar)
  q = -2.0 * code_length * st_u - 2.0 * gamma * u
  gram = u.T @ u
  known = labels >= 0
  return jax.lax.fori_loop(0, codes.shape[1], lambda c, z: update_code_bit(z, c, gram, q, known), codes)


def code_objective(codes: jax.Array, outputs: jax.Array, in_query: jax.Array, labels: jax.Array,
                   code_length: float, gamma: float, dissimilar=-1.0) -> jax.Array:
  """The objective DCC minimises (module docstring), over the query rows i and the known rows j;
  `[m, m]` memory: for tests and small databases."""
  known = labels >= 0
  similarity = jnp.where(labels[:, None] == labels[None, :], 1.0, dissimilar)
  pair = (outputs @ codes.T - code_length * similarity) ** 2
  pair = jnp.sum(jnp.where(in_query[:, None] & known[None, :], pair, 0.0))
  quantization = jnp.sum(jnp.where(in_query[:, None], (codes - outputs) ** 2, 0.0))
  return pair + gamma * quantization
