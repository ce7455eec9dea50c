"""Hashing losses of A2-Net (papers/a2net.txt, Eqs. 7, 8, 11 and 13) and ADSH's quantisation term.

The paper writes a batch as columns (`X` `[d, n]`, `V'` `[k, n]`); here rows are examples:
features `x` `[n, d]`, relaxed codes `v' = tanh(W x)` `[n, k]`, the tied encoder `W` `[k, d]`
(the decoder is `W^T`), database codes `Z` `[m, k]` in {-1, +1} (0 for rows not yet assigned).
Every function returns the plain sum the paper writes (squared Frobenius norms, no averaging).
"""
import jax
import jax.numpy as jnp


def reconstruction_error(x: jax.Array, w: jax.Array, codes: jax.Array) -> jax.Array:
  """`||X - W^T V'||_F^2`, the decoder term of Eq. 7: x `[n, d]`, w `[k, d]`, codes `[n, k]`."""
  return jnp.sum((x - codes @ w) ** 2)


def encoding_error(x: jax.Array, w: jax.Array, codes: jax.Array) -> jax.Array:
  """`||W X - V'||_F^2`, Eq. 7's soft form of the constraint `W X = V'` of Eq. 6."""
  return jnp.sum((x @ w.T - codes) ** 2)


def attribute_guided_reconstruction(x: jax.Array, w: jax.Array, codes: jax.Array, lam: float) -> jax.Array:
  """Eq. 7: `||X - W^T V'||_F^2 + lambda ||W X - V'||_F^2`."""
  return reconstruction_error(x, w, codes) + lam * encoding_error(x, w, codes)


def decorrelation_error(codes: jax.Array) -> jax.Array:
  """Eq. 8: `||V' V'^T - n I||_F^2` (the `[k, k]` Gram matrix of the bits over the batch of n):
  codes `[n, k]`."""
  n, k = codes.shape
  return jnp.sum((codes.T @ codes - n * jnp.eye(k, dtype=codes.dtype)) ** 2)


def pairwise_similarity(labels: jax.Array, database_labels: jax.Array, dissimilar=-1.0) -> jax.Array:
  """`S_ij = +1` for the same class, `dissimilar` otherwise (-1 in the paper; `balanced_dissimilarity`
  for ADSH's public code): labels `[n]`, database_labels `[m]` -> `[n, m]`."""
  return jnp.where(labels[:, None] == database_labels[None, :], 1.0, dissimilar)


def balanced_dissimilarity(labels: jax.Array, database_labels: jax.Array, num_classes: int,
                           query_mask: jax.Array | None = None) -> jax.Array:
  """ADSH's public code's "soft constraint" (`S = S (1 + r) - r`): a dissimilar pair's similarity
  is `-r`, r = (#similar pairs) / (#dissimilar pairs) over the queries (`labels` `[n]`, those in
  `query_mask`) x the database rows (`database_labels` `[m]`), rows with label -1 left out. Both
  kinds of pair then weigh the same in total; with many classes r ~ 1/classes, so dissimilar
  codes are pushed apart to orthogonal, not to opposite (with -1, one code c for every image and
  Z = -c satisfies every dissimilar pair). Per-class counts: O((n + m) + classes) memory."""
  valid = labels >= 0 if query_mask is None else query_mask & (labels >= 0)
  query_counts = jax.ops.segment_sum(valid.astype(jnp.float32), jnp.maximum(labels, 0), num_segments=num_classes)
  database_counts = jax.ops.segment_sum((database_labels >= 0).astype(jnp.float32), jnp.maximum(database_labels, 0),
                                        num_segments=num_classes)
  similar = query_counts @ database_counts
  dissimilar = jnp.sum(query_counts) * jnp.sum(database_counts) - similar
  return -similar / jnp.maximum(dissimilar, 1.0)


def asymmetric_error(codes: jax.Array, labels: jax.Array, database_codes: jax.Array,
                     database_labels: jax.Array, code_length: int, dissimilar=-1.0) -> jax.Array:
  """The last term of Eq. 13 (Eq. 11 relaxed): `sum_{i in Omega} sum_{j in Gamma}
  (tanh(W F(I_i))^T z_j - k S_ij)^2`: codes `[n, k]` (the batch's queries), labels `[n]`,
  database_codes Z `[m, k]`, database_labels `[m]`; database rows with label -1 (not yet seen)
  are left out. `dissimilar`: S of a dissimilar pair (`pairwise_similarity`)."""
  similarity = pairwise_similarity(labels, database_labels, dissimilar)
  pair = (codes @ database_codes.T - code_length * similarity) ** 2
  return jnp.sum(jnp.where(database_labels[None, :] >= 0, pair, 0.0))


def quantization_error(codes: jax.Array, own_database_codes: jax.Array) -> jax.Array:
  """ADSH's `||z_i - u_i||^2` summed over the batch (not in A2-Net's Eq. 13; weight gamma):
  codes `[n, k]`, own_database_codes `[n, k]` (the Z rows of the batch's images)."""
  return jnp.sum((own_database_codes - codes) ** 2)


def a2net_objective(reconstruction: jax.Array, decorrelation: jax.Array, asymmetric: jax.Array,
                    alpha: float, beta: float, quantization: jax.Array | float = 0.0,
                    gamma: float = 0.0) -> jax.Array:
  """Eq. 13 with ADSH's quantisation term: `[Eq. 7 term] + alpha ||V' V'^T - n I||_F^2
  + beta ([asymmetric term] + gamma sum_i ||z_i - v'_i||^2)` (the paper's lambda sits inside the
  Eq. 7 term, `attribute_guided_reconstruction`; gamma = 0 is Eq. 13 as printed).

  beta multiplies the quantisation term too, as in SEMICON's public code (`ADSH_Loss`: both terms
  `/ k * 12`): the terms with Z are then `beta (pair + gamma quant)`, a constant times the
  objective the closed-form Z update minimises (`jaxret.ops.asymmetric_codes`), so the network
  step and the Z step minimise one objective (with gamma outside, the network would weigh
  quantisation k / 12 times more than the Z update does)."""
  return reconstruction + alpha * decorrelation + beta * (asymmetric + gamma * quantization)
