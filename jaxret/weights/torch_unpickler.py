"""A pickle reader for PyTorch checkpoints that can only rebuild tensors, never run code.

`torch.save` writes a pickle whose globals are a few tensor-rebuild functions
(`torch._utils._rebuild_tensor_v2` and relatives), storage classes (`torch.FloatStorage`),
`collections.OrderedDict`, and persistent ids `("storage", storage_type, key, location, numel[,
view])` for the raw tensor bytes, which live outside the pickle. `RestrictedUnpickler` maps each
allowed global onto a stand-in defined here that only records what to read, and refuses every
other global with `UnsafeCheckpointError`: an `os.system` or a model class in a checkpoint
stops the load before anything is called. Tensors come back as `TensorRef`s; the file format
(`jaxret/weights/pth.py`) supplies the storage bytes and `materialize` turns them into NumPy
arrays, checking every view against its storage's bounds.
"""
import collections
import math
import pickle
from typing import Any, BinaryIO, Callable, NamedTuple

import ml_dtypes
import numpy as np

# torch storage class name -> element dtype (as written by torch.save, zip and legacy formats).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64), "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16), "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64), "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16), "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8), "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64), "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),
}
# torch dtype name -> dtype, for `_rebuild_tensor_v3` (tensors over an UntypedStorage).
TORCH_DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64), "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int64": np.dtype(np.int64), "int32": np.dtype(np.int32), "int16": np.dtype(np.int16),
    "int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32), "uint64": np.dtype(np.uint64), "bool": np.dtype(np.bool_),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
}


class UnsafeCheckpointError(pickle.UnpicklingError):
  """A checkpoint's pickle names a global that is not a tensor-rebuild function or storage."""


class StorageType(NamedTuple):
  """Stand-in for a torch storage class such as `torch.FloatStorage`."""
  name: str
  dtype: np.dtype


class TorchDtype(NamedTuple):
  """Stand-in for a torch dtype such as `torch.bfloat16`."""
  name: str
  dtype: np.dtype


class StorageRef(NamedTuple):
  """A storage named by a persistent id: `key` in the file, elements of `dtype`.

  `offset` (in elements) is non-zero only for the legacy format's storage views.
  """
  key: str
  dtype: np.dtype
  offset: int = 0


class TensorRef(NamedTuple):
  """A tensor to cut out of a storage: shape `size`, `stride` and `offset` in elements."""
  storage: StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]
  dtype: np.dtype


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
  """`value` as a tuple of non-negative ints, else a ValueError naming `what`."""
  if not isinstance(value, (tuple, list)) or not all(
      isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
    raise ValueError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
  return tuple(value)


def _tensor_ref(storage: Any, storage_offset: Any, size: Any, stride: Any,
                dtype: np.dtype | None) -> TensorRef:
  """A checked `TensorRef`: a view of `storage` in elements of `dtype` (default the storage's)."""
  if not isinstance(storage, StorageRef):
    raise ValueError(f"tensor storage must come from a persistent id, got {type(storage).__name__}")
  (offset,) = _int_tuple((storage_offset,), "storage_offset")
  size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
  if len(size) != len(stride):
    raise ValueError(f"tensor size {size} and stride {stride} differ in length")
  return TensorRef(storage, offset, size, stride, storage.dtype if dtype is None else dtype)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> TensorRef:
  """Records `torch._utils._rebuild_tensor`: a view of `storage` (elements of its dtype)."""
  return _tensor_ref(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> TensorRef:
  """Records `torch._utils._rebuild_tensor_v2`; gradients, hooks and metadata are dropped."""
  del requires_grad, backward_hooks, metadata
  return _tensor_ref(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any, backward_hooks: Any, dtype: Any,
                       metadata: Any = None) -> TensorRef:
  """Records `torch._utils._rebuild_tensor_v3`: a tensor of `dtype` over an untyped storage."""
  del requires_grad, backward_hooks, metadata
  if not isinstance(dtype, TorchDtype):
    raise ValueError(f"_rebuild_tensor_v3 dtype must be a torch dtype, got {dtype!r}")
  return _tensor_ref(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> TensorRef:
  """Records `torch._utils._rebuild_parameter[_with_state]`: the parameter's data tensor."""
  del requires_grad, backward_hooks, state
  if not isinstance(data, TensorRef):
    raise ValueError(f"parameter data must be a tensor, got {type(data).__name__}")
  return data


_REBUILD_FUNCTIONS: dict[str, Callable[..., TensorRef]] = {
    "_rebuild_tensor": _rebuild_tensor,
    "_rebuild_tensor_v2": _rebuild_tensor_v2,
    "_rebuild_tensor_v3": _rebuild_tensor_v3,
    "_rebuild_parameter": _rebuild_parameter,
    "_rebuild_parameter_with_state": _rebuild_parameter,
}
# Shown in refusals; find_class below is the authority.
ALLOWED_GLOBALS = ("collections.OrderedDict, torch._utils._rebuild_tensor[_v2, _v3], "
                   "torch._utils._rebuild_parameter[_with_state], torch[.cuda].<Type>Storage, "
                   "torch[.storage].UntypedStorage, torch.<dtype>")


class RestrictedUnpickler(pickle.Unpickler):
  """Unpickles tensors (as `TensorRef`), plain containers and scalars; refuses anything else.

  `source` names the file and member in errors. Storage persistent ids become `StorageRef`s,
  and each storage's dtype is recorded in `storage_dtypes` (key -> dtype) for the file reader.
  """

  def __init__(self, file: BinaryIO, source: str):
    super().__init__(file)
    self.source = source
    self.storage_dtypes: dict[str, np.dtype] = {}

  def find_class(self, module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name in _REBUILD_FUNCTIONS:
      return _REBUILD_FUNCTIONS[name]
    if (module in ("torch", "torch.cuda") and name in STORAGE_DTYPES
        or (module, name) == ("torch.storage", "UntypedStorage")):
      return StorageType(name, STORAGE_DTYPES[name])
    if module == "torch" and name in TORCH_DTYPES:
      return TorchDtype(name, TORCH_DTYPES[name])
    raise UnsafeCheckpointError(
        f"{self.source}: refused global '{module}.{name}': a checkpoint may only rebuild tensors "
        f"(allowed: {ALLOWED_GLOBALS}); nothing was called. Save a state dict "
        "(torch.save(model.state_dict(), path)) or convert the file to .safetensors.")

  def persistent_load(self, pid: Any) -> StorageRef:
    """`("storage", type, key, location, numel)`, or the legacy format's with a view tuple."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6)
            and pid[0] in ("storage", b"storage") and isinstance(pid[1], StorageType)):
      raise UnsafeCheckpointError(f"{self.source}: refused persistent id {repr(pid)[:200]}: expected "
                                  "('storage', <torch storage class>, key, location, numel[, view])")
    storage_type, key = pid[1], storage_key(pid[2], self.source)
    if self.storage_dtypes.setdefault(key, storage_type.dtype) != storage_type.dtype:
      raise ValueError(f"{self.source}: storage {key!r} is read as both "
                       f"{self.storage_dtypes[key]} and {storage_type.dtype}")
    view = pid[5] if len(pid) == 6 else None
    if view is None:
      return StorageRef(key, storage_type.dtype)
    # Legacy storage views: (view_key, offset, size), offset in elements of the root storage.
    if not (isinstance(view, tuple) and len(view) == 3):
      raise ValueError(f"{self.source}: storage view {repr(view)[:200]}: expected (key, offset, size)")
    (offset,) = _int_tuple((view[1],), "storage view offset")
    return StorageRef(key, storage_type.dtype, offset)


def storage_key(key: Any, source: str) -> str:
  """A storage key (str, or bytes from Python 2 pickles) as str."""
  if isinstance(key, bytes):
    key = key.decode("ascii")
  if not isinstance(key, str):
    raise ValueError(f"{source}: storage key {key!r}: expected a string")
  return key


def materialize(tensor: TensorRef, storage: np.ndarray, source: str) -> np.ndarray:
  """The array `tensor` describes, copied out of `storage` (1-D, the storage's dtype).

  Raises ValueError when any element the view addresses lies outside the storage, or when the
  view has more elements than the storage (overlapping or expanded views).
  """
  start = tensor.storage.offset + tensor.offset
  if tensor.dtype != storage.dtype:  # _rebuild_tensor_v3 over an untyped (uint8) storage
    storage = storage[:storage.size // tensor.dtype.itemsize * tensor.dtype.itemsize].view(tensor.dtype)
  count = math.prod(tensor.size)
  last = start + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride)) if count else start
  if count and last >= storage.size:
    raise ValueError(f"{source}: tensor view (offset {start}, size {tensor.size}, stride "
                     f"{tensor.stride}) reaches element {last} of storage "
                     f"{tensor.storage.key!r}, which has {storage.size}")
  if count > storage.size - start:  # overlapping or stride 0: tiny files could ask for terabytes
    raise ValueError(f"{source}: tensor of size {tensor.size} (stride {tensor.stride}) has more "
                     f"elements than storage {tensor.storage.key!r} holds from offset {start}; "
                     "expected a state dict of dense tensors (save tensor.contiguous())")
  if not count:
    return np.zeros(tensor.size, tensor.dtype)
  strides = tuple(s * storage.itemsize for s in tensor.stride)
  view = np.lib.stride_tricks.as_strided(storage[start:], tensor.size, strides, writeable=False)
  return np.array(view, copy=True)


def resolve(obj: Any, load_storage: Callable[[StorageRef], np.ndarray], source: str) -> Any:
  """`obj` with every `TensorRef` replaced by its array; containers rebuilt, scalars kept."""
  if isinstance(obj, TensorRef):
    return materialize(obj, load_storage(obj.storage), source)
  if isinstance(obj, (StorageRef, StorageType, TorchDtype)):
    return None
  if isinstance(obj, dict):
    return {key: resolve(value, load_storage, source) for key, value in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [resolve(value, load_storage, source) for value in obj]
  return obj
