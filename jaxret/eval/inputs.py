"""Checks of evaluation inputs at the public boundary, with errors that name the bad argument.

Every public evaluation function converts its arguments here once, so that the kernels can
assume: embeddings are finite float32 `[N, D]`, labels are int32 `[N]` (or multi-hot `[N, L]`),
hash codes are float32 in {-1, +1} `[N, bits]`.
"""
from __future__ import annotations

import numpy as np


def embeddings(name: str, x: object, *, dim: int | None = None) -> np.ndarray:
  """Returns `x` as finite float32 `[N, D]`; `dim` (if given) is the required D."""
  arr = np.asarray(x)
  if arr.ndim != 2:
    raise ValueError(f"{name} must be a 2-D array [N, D]; got shape {arr.shape}.")
  if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
    raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}.")
  if dim is not None and arr.shape[1] != dim:
    raise ValueError(f"{name} must have {dim} columns to match the queries; got shape {arr.shape}.")
  arr = arr.astype(np.float32, copy=False)
  if not np.isfinite(arr).all():
    bad = np.argwhere(~np.isfinite(arr))[0]
    raise ValueError(f"{name} must be finite; {name}[{bad[0]}, {bad[1]}] = {arr[tuple(bad)]}.")
  return arr


def labels(name: str, x: object, *, n: int, multi_hot: bool = False) -> np.ndarray:
  """Returns `x` as int32 `[n]` class ids, or (if `multi_hot`) also accepts 0/1 `[n, L]`."""
  arr = np.asarray(x)
  if multi_hot and arr.ndim == 2:
    if arr.shape[0] != n:
      raise ValueError(f"{name} must have {n} rows (one per item); got shape {arr.shape}.")
    if not np.isin(arr, (0, 1)).all():
      raise ValueError(f"{name} is 2-D, so it must be multi-hot with entries in {{0, 1}}; "
                       f"found values {np.unique(arr)[:8]}.")
    return arr.astype(np.int32)
  if arr.ndim != 1 or arr.shape[0] != n:
    expected = f"[{n}] (or multi-hot [{n}, L])" if multi_hot else f"[{n}]"
    raise ValueError(f"{name} must have shape {expected}, one per item; got shape {arr.shape}.")
  if arr.size and not np.issubdtype(arr.dtype, np.integer):
    if not np.issubdtype(arr.dtype, np.floating) or not np.array_equal(arr, np.round(arr)):
      raise ValueError(f"{name} must hold integer ids; got dtype {arr.dtype}.")
  return arr.astype(np.int32)


def sign_codes(name: str, x: object, *, bits: int | None = None) -> np.ndarray:
  """Returns hash codes as float32 {-1, +1} `[N, bits]`.

  Accepts {-1, +1} codes of any numeric dtype, booleans (True = +1), or bits packed
  along the last axis as uint8 (`np.packbits`, bit 1 = +1). Zero padding bits that
  `np.packbits` adds are the same in every code, so they never change a Hamming distance.
  """
  arr = np.asarray(x)
  if arr.ndim != 2:
    raise ValueError(f"{name} must be a 2-D array [N, bits] (or packed uint8 [N, bytes]); "
                     f"got shape {arr.shape}.")
  if arr.dtype == np.uint8:
    arr = np.unpackbits(arr, axis=1).astype(np.float32) * 2 - 1
  elif arr.dtype == np.bool_:
    arr = arr.astype(np.float32) * 2 - 1
  else:
    if not np.isin(arr, (-1, 1)).all():
      raise ValueError(f"{name} must hold codes in {{-1, +1}} (or packed uint8 bits, or booleans); "
                       f"found values {np.unique(arr)[:8]}.")
    arr = arr.astype(np.float32)
  if bits is not None and arr.shape[1] != bits:
    raise ValueError(f"{name} must have {bits} bits to match the query codes; got {arr.shape[1]}.")
  return arr


def positive_ints(name: str, values: object) -> tuple[int, ...]:
  """Returns `values` as a non-empty tuple of positive ints."""
  out = tuple(int(v) for v in np.atleast_1d(np.asarray(values)))
  if not out or any(v < 1 for v in out) or any(v != w for v, w in zip(out, np.atleast_1d(values))):
    raise ValueError(f"{name} must be positive integers; got {values!r}.")
  return out


def vectors(name: str, x: object, metric: str, *, dim: int | None = None) -> np.ndarray:
  """Hash codes (`sign_codes`) for the "hamming" metric, embeddings (`embeddings`) otherwise."""
  if metric == "hamming":
    return sign_codes(name, x, bits=dim)
  return embeddings(name, x, dim=dim)


def visible(name: str, mask: object | None, *, n: int) -> np.ndarray:
  """`[n]` bool mask of gallery items that may be returned (all True when `mask` is None)."""
  if mask is None:
    return np.ones(n, bool)
  arr = np.asarray(mask)
  if arr.shape != (n,) or arr.dtype != np.bool_:
    raise ValueError(f"{name} must be a bool array of shape ({n},); got {arr.dtype} {arr.shape}.")
  return arr


def exclusion_keys(name: str, keys: tuple[object, object], *, num_query: int,
                   num_gallery: int) -> tuple[np.ndarray, np.ndarray]:
  """(query keys, gallery keys) as int32 `[Q, c]`, `[G, c]`; 1-D inputs are one key column."""
  if not isinstance(keys, (tuple, list)) or len(keys) != 2:
    raise ValueError(f"{name} must be a pair (query keys, gallery keys); got {type(keys).__name__}.")
  query_keys, gallery_keys = (np.asarray(a) for a in keys)
  query_keys = query_keys[:, None] if query_keys.ndim == 1 else query_keys
  gallery_keys = gallery_keys[:, None] if gallery_keys.ndim == 1 else gallery_keys
  if (query_keys.ndim != 2 or gallery_keys.ndim != 2 or query_keys.shape[0] != num_query
      or gallery_keys.shape[0] != num_gallery or query_keys.shape[1] != gallery_keys.shape[1]):
    raise ValueError(f"{name} must be (query keys [{num_query}, c], gallery keys "
                     f"[{num_gallery}, c]); got shapes {query_keys.shape} and {gallery_keys.shape}.")
  return query_keys.astype(np.int32), gallery_keys.astype(np.int32)
