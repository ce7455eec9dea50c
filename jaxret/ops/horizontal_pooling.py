"""Horizontal stripe pooling: a feature map cut into S horizontal stripes, each pooled to one vector.

Stripe s of a map of height H covers rows `floor(s H / S)` to `ceil((s + 1) H / S) - 1`, the
bounds of torch's adaptive pooling: equal stripes when S divides H, neighbouring stripes sharing
a row otherwise. Both poolings are one batched op over all stripes (a `[S, H]` row mask).
"""
import jax
import jax.numpy as jnp
import numpy as np


def stripe_rows(height: int, num_stripes: int) -> np.ndarray:
  """bool `[S, H]`: True where row h belongs to stripe s (stripe 0 at the top)."""
  if height < 1 or num_stripes < 1:
    raise ValueError(f"stripe_rows(height={height}, num_stripes={num_stripes}): expected positive sizes")
  s = np.arange(num_stripes)[:, None]
  rows = np.arange(height)[None, :]
  start = (s * height) // num_stripes
  end = -((-(s + 1) * height) // num_stripes)  # ceil((s + 1) H / S)
  return (rows >= start) & (rows < end)


def horizontal_average_pool(x: jax.Array, num_stripes: int) -> jax.Array:
  """Mean of each stripe's rows and columns: `[B, H, W, C]` -> `[B, S, C]`."""
  rows = stripe_rows(x.shape[1], num_stripes)
  weights = jnp.asarray(rows / rows.sum(axis=1, keepdims=True), x.dtype)  # [S, H], rows sum to 1
  return jnp.einsum("sh,bhwc->bsc", weights, x) / x.shape[2]


def horizontal_max_pool(x: jax.Array, num_stripes: int) -> jax.Array:
  """Maximum over each stripe's rows and columns: `[B, H, W, C]` -> `[B, S, C]`."""
  rows = jnp.asarray(stripe_rows(x.shape[1], num_stripes))
  column_max = jnp.max(x, axis=2)  # [B, H, C]
  masked = jnp.where(rows[None, :, :, None], column_max[:, None], -jnp.inf)  # [B, S, H, C]
  return jnp.max(masked, axis=2)
