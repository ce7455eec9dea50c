"""Horizontal stripe pooling (jaxret/ops/horizontal_pooling.py): S stripes of rows, each pooled to a vector.

Stripe s covers rows floor(s H / S) .. ceil((s + 1) H / S) - 1 (torch's adaptive-pooling bounds);
both poolings are one batched op over the stripes (a `[S, H]` row mask).
"""
import torch


def stripe_rows(height: int, num_stripes: int, device=None) -> torch.Tensor:
  """bool [S, H]: True where row h belongs to stripe s (stripe 0 at the top)."""
  s = torch.arange(num_stripes, device=device)[:, None]
  rows = torch.arange(height, device=device)[None, :]
  return (rows >= s * height // num_stripes) & (rows < -((-(s + 1) * height) // num_stripes))


def horizontal_average_pool(x: torch.Tensor, num_stripes: int) -> torch.Tensor:
  """Mean of each stripe's rows and columns: [B, C, H, W] -> [B, S, C]."""
  rows = stripe_rows(x.shape[2], num_stripes, x.device).to(x.dtype)
  weights = rows / rows.sum(dim=1, keepdim=True)
  return torch.einsum("sh,bch->bsc", weights, x.mean(dim=3))


def horizontal_max_pool(x: torch.Tensor, num_stripes: int) -> torch.Tensor:
  """Maximum over each stripe's rows and columns: [B, C, H, W] -> [B, S, C]."""
  rows = stripe_rows(x.shape[2], num_stripes, x.device)
  column_max = x.amax(dim=3)  # [B, C, H]
  masked = column_max[:, None].masked_fill(~rows[None, :, None, :], float("-inf"))  # [B, S, C, H]
  return masked.amax(dim=3)
