"""Identity-level attribute files of Lin et al., "Improving person re-identification by attribute
and identity learning" (Pattern Recognition 2019): `market_attribute.mat` (27 attributes,
github.com/vana77/Market-1501_Attribute) and `duke_attribute.mat` (23 attributes,
github.com/vana77/DukeMTMC-attribute).

Layout of the MATLAB file (as `scipy.io.loadmat` returns it): a 1x1 struct `ROOT`
(`market_attribute` / `duke_attribute`) with fields `train` and `test`, each a 1x1 struct
holding one 1xN row per attribute (values 1 = no / first value, 2 = yes / second value; age
1..4) and `image_index`, a 1xN cell of identity strings such as '0002'. The `train` and
`test` structs do not list their fields in the same order, so fields are read by name.
"""
import pathlib

import numpy as np

from jaxret.data.builders.problems import BadExampleError


def _identities(cell: np.ndarray, path: pathlib.Path, part: str) -> list[int]:
  """Identity numbers from `image_index` (a cell of strings, or a char matrix)."""
  cell = np.asarray(cell)
  if cell.dtype.kind == "U" and cell.ndim == 2:  # char matrix: one identity per row
    texts = ["".join(row) for row in cell]
  else:
    texts = [str(np.asarray(item).ravel()[0]) if np.asarray(item).size else "" for item in cell.ravel()]
  try:
    return [int(t) for t in texts]
  except ValueError:
    raise BadExampleError(f"{path}: {part}.image_index: expected identity strings like '0002', "
                          f"found {texts[:5]}...") from None


def load(path: pathlib.Path, root_key: str, names: tuple[str, ...], sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
  """Reads every identity's attributes from both the `train` and `test` parts.

  Args:
    path: the .mat file.
    root_key: the struct holding `train` and `test` (`market_attribute`, `duke_attribute`).
    names: the attribute fields to read, in the order they are returned.
    sizes: the number of values of each attribute; stored values 1..size become 0..size-1.
  Returns:
    identity -> int32 `[len(names)]`.
  Raises:
    BadExampleError: naming the file, part, field (and identity) that does not match.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top  (only these two builders need scipy)
  try:
    mat = scipy.io.loadmat(path)
  except Exception as e:  # scipy raises several types for unreadable files
    raise BadExampleError(f"{path}: expected a MATLAB .mat file, scipy says {type(e).__name__}: {e}") from None
  if root_key not in mat:
    found = sorted(k for k in mat if not k.startswith("__"))
    raise BadExampleError(f"{path}: expected a struct {root_key!r}, found {found}")
  root = mat[root_key].ravel()[0]
  table: dict[int, np.ndarray] = {}
  for part in ("train", "test"):
    if part not in (root.dtype.names or ()):
      raise BadExampleError(f"{path}: {root_key}: expected fields 'train' and 'test', found {root.dtype.names}")
    struct = root[part].ravel()[0]
    fields = struct.dtype.names or ()
    missing = [n for n in names + ("image_index",) if n not in fields]
    if missing:
      raise BadExampleError(f"{path}: {root_key}.{part}: expected fields {missing}, found {fields}")
    identities = _identities(struct["image_index"], path, f"{root_key}.{part}")
    values = np.zeros((len(identities), len(names)), np.int32)
    for a, (name, size) in enumerate(zip(names, sizes)):
      column = np.asarray(struct[name]).ravel()
      if column.shape != (len(identities),):
        raise BadExampleError(f"{path}: {root_key}.{part}.{name}: expected {len(identities)} values "
                              f"(one per image_index entry), found {column.shape[0]}")
      bad = np.flatnonzero((column < 1) | (column > size) | (column != np.round(column)))
      if bad.size:
        raise BadExampleError(f"{path}: {root_key}.{part}.{name}: identity {identities[bad[0]]:04d} has value "
                              f"{column[bad[0]]}: expected an integer in 1..{size}")
      values[:, a] = column.astype(np.int32) - 1
    for identity, row in zip(identities, values):
      if identity in table and not np.array_equal(table[identity], row):
        raise BadExampleError(
            f"{path}: identity {identity:04d} is listed in both train and test with different attributes")
      table[identity] = row
  return table
