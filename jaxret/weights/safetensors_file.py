"""Reads `.safetensors` files with NumPy alone, following the format's specification.

Layout: an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON
`{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`
(offsets relative to the byte after the header), then the little-endian tensor bytes.
No code runs; every offset and size is checked against the file.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np

SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16), "I16": np.dtype(np.int16), "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32), "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16), "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn), "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Every tensor in the `.safetensors` file at `path` by name, in its stored dtype.

  Raises ValueError naming the file and tensor when the header is malformed or a tensor's
  bytes do not fit its dtype and shape or lie outside the file.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    data = f.read()
  if len(data) < 8:
    raise ValueError(f"{path}: {len(data)} bytes; a .safetensors file starts with an 8-byte header size")
  n = int.from_bytes(data[:8], "little")
  if n > MAX_HEADER_BYTES or 8 + n > len(data):
    raise ValueError(f"{path}: header size {n} does not fit the file ({len(data)} bytes); "
                     "not a .safetensors file?")
  try:
    header = json.loads(data[8:8 + n].decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: header is not UTF-8 JSON: {e}") from e
  if not isinstance(header, dict):
    raise ValueError(f"{path}: header is a JSON {type(header).__name__}, expected an object")
  buffer = memoryview(data)[8 + n:]
  arrays = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    arrays[name] = _tensor(buffer, name, info, path)
  return arrays


def _tensor(buffer: memoryview, name: str, info: object, path: str) -> np.ndarray:
  """Tensor `name` described by header entry `info`, copied out of the data `buffer`."""
  where = f"{path}: tensor {name!r}"
  if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
    raise ValueError(f"{where}: header entry {info!r}; expected keys dtype, shape, data_offsets")
  if info["dtype"] not in SAFETENSORS_DTYPES:
    raise ValueError(f"{where}: dtype {info['dtype']!r}; expected one of {sorted(SAFETENSORS_DTYPES)}")
  dtype = SAFETENSORS_DTYPES[info["dtype"]]
  shape, offsets = info["shape"], info["data_offsets"]
  if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
    raise ValueError(f"{where}: shape {shape!r}; expected a list of non-negative ints")
  if not (isinstance(offsets, list) and len(offsets) == 2
          and all(isinstance(o, int) for o in offsets) and 0 <= offsets[0] <= offsets[1] <= len(buffer)):
    raise ValueError(f"{where}: data_offsets {offsets!r}; expected [begin, end] within the "
                     f"{len(buffer)} data bytes")
  begin, end = offsets
  if end - begin != int(np.prod(shape)) * dtype.itemsize:
    raise ValueError(f"{where}: {end - begin} bytes, but {info['dtype']} {shape} needs "
                     f"{int(np.prod(shape)) * dtype.itemsize}")
  array = np.frombuffer(buffer[begin:end], dtype).reshape(shape)
  return array.byteswap() if sys.byteorder == "big" else array.copy()
