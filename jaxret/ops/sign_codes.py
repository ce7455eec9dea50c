"""Hash codes from real-valued codes: the sign, with 0 -> +1. One convention for training (A2-Net's
Eq. 5 / 14), evaluation (the hashing protocol) and the search index."""
import numpy as np


def sign_codes(relaxed):
  """Real `[..., k]` (a NumPy or a JAX array, of the same kind out) -> int8 codes in {-1, +1},
  +1 where `relaxed >= 0`."""
  return ((relaxed >= 0).astype(np.int8) * 2 - 1).astype(np.int8)
