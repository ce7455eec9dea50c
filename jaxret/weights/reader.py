"""One entry point for weight files: `.pth`/`.pt`/`.bin` (torch.save), `.safetensors`, `.npz`.

None of the readers can run code from the file; each returns a flat dict name -> NumPy array.
"""
import os
import zipfile

import numpy as np

from jaxret.weights.pth import read_pth
from jaxret.weights.safetensors_file import read_safetensors


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The arrays in the weight file at `path` by name, chosen by suffix.

  `.safetensors` and `.npz` are read as such; any other suffix (.pth, .pt, .bin, .ckpt) as a
  `torch.save` file, zip or legacy format, through the restricted unpickler.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such weight file (expected .pth/.pt, .safetensors or .npz)")
  suffix = os.path.splitext(path)[1].lower()
  if suffix == ".safetensors":
    return read_safetensors(path)
  if suffix == ".npz":
    return read_npz(path)
  return read_pth(path)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The arrays of an `.npz` file by name; object arrays (pickles) are refused."""
  path = os.fspath(path)
  if not zipfile.is_zipfile(path):
    raise ValueError(f"{path}: not an .npz (zip) archive")
  arrays = {}
  with np.load(path, allow_pickle=False) as npz:
    for name in npz.files:
      try:
        arrays[name] = npz[name]
      except ValueError as e:
        raise ValueError(f"{path}: array {name!r} cannot be read without pickle ({e}); "
                         "expected numeric arrays only") from e
  return arrays
