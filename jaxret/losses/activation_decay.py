"""DeML's activation decay (Eq. 6): a weight decay on the learners' outputs, plus the term
`L_ntri` that keeps the learners' weights from collapsing to 0 while the outputs shrink.

  L_act = lambda1 / (2 I J N) sum_{i,j,n} ||CA_(i,j)[x_n]||^2 + L_ntri
  L_ntri = lambda2 sum_{i,j} tr[(w_ij w_ij^T - I) (.) (w_ij w_ij^T - I)]     ((.) Hadamard)

`w_ij` `[d/(IJ), d1]` is learner (i, j)'s weight matrix. The trace of a Hadamard square keeps
only the diagonal: `tr[A (.) A] = sum_r A_rr^2`, so `L_ntri = lambda2 sum_{i,j,r} (||w_ij[r]||^2 - 1)^2`,
each output unit's weight vector pulled to unit norm; `orthonormality_penalty` computes that.
"""
import jax
import jax.numpy as jnp

LAMBDA1 = 0.014
LAMBDA2 = 0.25


def activation_decay(learners: jax.Array, lambda1: float = LAMBDA1) -> jax.Array:
  """Eq. 6, first term: learner outputs `[N, L, d]` (L = I J learners) -> scalar
  `lambda1 / (2 L N) sum ||CA||^2`."""
  n, num_learners, _ = learners.shape
  return lambda1 / (2 * num_learners * n) * jnp.sum(jnp.square(learners.astype(jnp.float32)))


def orthonormality_penalty(kernels: jax.Array, lambda2: float = LAMBDA2) -> jax.Array:
  """Eq. 6, `L_ntri`: learner kernels `[L, d1, d_out]` (Flax layout: `w_ij` is `kernels[l].T`)
  -> scalar `lambda2 sum_l tr[(w w^T - I) (.) (w w^T - I)]`, computed as
  `lambda2 sum_{l,r} (||w_l[r]||^2 - 1)^2`."""
  row_norms = jnp.sum(jnp.square(kernels.astype(jnp.float32)), axis=1)  # [L, d_out]: diag(w w^T)
  return lambda2 * jnp.sum(jnp.square(row_norms - 1.0))
