"""Reads `torch.save` files (`.pth`, `.pt`, `.bin`) without torch: zip and legacy formats.

Zip format (torch >= 1.6): a zip archive with one top folder `<name>/` holding `data.pkl` (the
pickle), `data/<key>` (raw little-endian bytes of each storage) and `byteorder`. Legacy format
(torch < 1.6, e.g. torchvision's older ImageNet files): five pickles in a row (magic number,
protocol version 1001, system info, the object, the list of storage keys), then each storage as
an int64 element count followed by its raw bytes. Both pickles go through
`RestrictedUnpickler`, so a checkpoint can never run code. The pre-2017 tar format is refused.
"""
import io
import os
import tarfile
import zipfile
from typing import Any, BinaryIO

import numpy as np

from jaxret.weights import torch_unpickler
from jaxret.weights.torch_unpickler import RestrictedUnpickler, StorageRef, UnsafeCheckpointError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Every tensor in the `torch.save` file at `path`, by its dotted name ("layer1.0.conv1.weight").

  Nested dicts and lists are flattened with "." ({"state_dict": {"fc.bias": t}} gives
  "state_dict.fc.bias"); non-tensor values (epoch counters, strings) are dropped.
  Raises UnsafeCheckpointError for a pickle that names any global other than tensor rebuilding.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    head = f.read(4)
  if head == b"PK\x03\x04":
    obj = _load_zip(path)
  elif tarfile.is_tarfile(path):
    raise ValueError(f"{path}: a torch tar checkpoint (torch < 0.1.10) is not supported; "
                     "re-save it with a current torch.save or as .safetensors")
  else:
    obj = _load_legacy(path)
  arrays: dict[str, np.ndarray] = {}
  _flatten(obj, "", arrays)
  if not arrays:
    raise ValueError(f"{path}: holds no tensors (found a {type(obj).__name__})")
  return arrays


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  """Adds the arrays in nested dicts / lists `obj` to `out` under dotted names."""
  if isinstance(obj, np.ndarray):
    out[prefix or "tensor"] = obj
  elif isinstance(obj, dict):
    for key, value in obj.items():
      _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
  elif isinstance(obj, list):
    for i, value in enumerate(obj):
      _flatten(value, f"{prefix}.{i}" if prefix else str(i), out)


def _unpickle(f: BinaryIO, source: str) -> tuple[Any, RestrictedUnpickler]:
  """One restricted pickle from `f`; format errors name `source`, refusals pass through."""
  unpickler = RestrictedUnpickler(f, source)
  try:
    return unpickler.load(), unpickler
  except UnsafeCheckpointError:
    raise
  except Exception as e:  # a malformed pickle: truncated, wrong opcodes, bad rebuild arguments
    raise ValueError(f"{source}: not a readable torch checkpoint pickle: {e}") from e


def _load_zip(path: str) -> Any:
  """The object in a zip-format `torch.save` file, tensors as arrays."""
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise ValueError(f"{path}: a zip archive without exactly one '<folder>/data.pkl' "
                       f"(has {names[:5]}{' ...' if len(names) > 5 else ''}); expected a torch.save "
                       "file (an .npz must be named *.npz)")
    prefix = pickles[0][:-len("data.pkl")]
    source = f"{path}:{pickles[0]}"
    obj, unpickler = _unpickle(io.BytesIO(archive.read(pickles[0])), source)
    byteorder = "little"
    if f"{prefix}byteorder" in names:
      byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace")
      if byteorder not in ("little", "big"):
        raise ValueError(f"{path}:{prefix}byteorder is {byteorder!r}; expected 'little' or 'big'")
    cache: dict[str, np.ndarray] = {}

    def load_storage(ref: StorageRef) -> np.ndarray:
      if ref.key not in cache:
        member = f"{prefix}data/{ref.key}"
        if member not in names:
          raise ValueError(f"{path}: storage {ref.key!r} has no member {member!r}")
        data = archive.read(member)
        cache[ref.key] = _storage_array(data, ref.dtype, byteorder, f"{path}:{member}")
      return cache[ref.key]

    return torch_unpickler.resolve(obj, load_storage, source)


def _storage_array(data: bytes, dtype: np.dtype, byteorder: str, source: str) -> np.ndarray:
  """Raw storage bytes as a 1-D array of `dtype` in native byte order."""
  if len(data) % dtype.itemsize:
    raise ValueError(f"{source}: {len(data)} bytes is not a whole number of {dtype} elements")
  array = np.frombuffer(data, dtype)
  if byteorder != "little" and dtype.itemsize > 1:
    array = array.byteswap()
  return array


def _load_legacy(path: str) -> Any:
  """The object in a legacy-format (non-zip) `torch.save` file, tensors as arrays."""
  with open(path, "rb") as f:
    magic, _ = _unpickle(f, path)
    if magic != LEGACY_MAGIC_NUMBER:
      raise ValueError(f"{path}: neither a zip archive nor a legacy torch.save file (magic number "
                       f"{magic!r}, expected {LEGACY_MAGIC_NUMBER}); expected .pth/.pt, "
                       ".safetensors or .npz")
    protocol, _ = _unpickle(f, path)
    if protocol != LEGACY_PROTOCOL_VERSION:
      raise ValueError(f"{path}: legacy protocol version {protocol!r}, expected "
                       f"{LEGACY_PROTOCOL_VERSION}")
    sys_info, _ = _unpickle(f, path)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    obj, unpickler = _unpickle(f, path)
    keys, _ = _unpickle(f, path)
    if not isinstance(keys, list):
      raise ValueError(f"{path}: legacy storage key list is a {type(keys).__name__}, expected list")
    size = os.fstat(f.fileno()).st_size
    storages: dict[str, np.ndarray] = {}
    for key in keys:
      key = torch_unpickler.storage_key(key, path)
      if key not in unpickler.storage_dtypes:
        raise ValueError(f"{path}: storage {key!r} is listed but no tensor uses it")
      dtype = unpickler.storage_dtypes[key]
      numel = int.from_bytes(f.read(8), "little" if little else "big", signed=True)
      nbytes = numel * dtype.itemsize
      if numel < 0 or f.tell() + nbytes > size:
        raise ValueError(f"{path}: storage {key!r} claims {numel} elements of {dtype}, past the "
                         f"end of the file ({size} bytes)")
      storages[key] = _storage_array(f.read(nbytes), dtype, "little" if little else "big", path)

  def load_storage(ref: StorageRef) -> np.ndarray:
    if ref.key not in storages:
      raise ValueError(f"{path}: storage {ref.key!r} is used by a tensor but not stored")
    return storages[ref.key]

  return torch_unpickler.resolve(obj, load_storage, path)
