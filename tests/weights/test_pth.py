"""Tests for jaxret/weights/pth.py and torch_unpickler.py: torch.save files read without torch.

torch (a test dependency) writes the files; jaxret reads them with its restricted unpickler, and
hand-made pickles check that anything but tensor rebuilding is refused before it runs.
"""
import collections
import os
import pickle
import subprocess
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest

from jaxret.weights import UnsafeCheckpointError, read_checkpoint, read_pth
from jaxret.weights.pth import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION

import torch  # test dependency


def _tensors() -> tuple[dict, dict[str, np.ndarray]]:
  """A checkpoint-like object of many dtypes and views, and the arrays its tensors hold."""
  g = torch.Generator().manual_seed(0)
  base = torch.randn(6, 5, generator=g)
  state = collections.OrderedDict([
      ("conv.weight", torch.randn(4, 3, 3, 3, generator=g)),
      ("half", torch.randn(7, generator=g).half()),
      ("bf16", torch.randn(3, 2, generator=g).bfloat16()),
      ("double", torch.randn(2, generator=g).double()),
      ("long", torch.arange(5)),
      ("int8", torch.tensor([-3, 4], dtype=torch.int8)),
      ("mask", torch.tensor([True, False, True])),
      ("bytes", torch.tensor([0, 255], dtype=torch.uint8)),
      ("scalar", torch.tensor(3.5)),
      ("empty", torch.zeros(0, 3)),
      ("transposed", base.t()),         # non-contiguous view
      ("rows", base[2:4]),               # shares base's storage at an offset
      ("base", base),
      ("column", base[:, 1]),            # strided view of the same storage
      ("param", torch.nn.Parameter(torch.ones(2, 2))),
      ("uint16", torch.tensor([1, 65535], dtype=torch.uint16)),  # _rebuild_tensor_v3, untyped storage
      ("float8", torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn)),
  ])
  obj = {"state_dict": state, "epoch": 7, "arch": "resnet", "history": [torch.ones(1), 0.5]}
  low_precision = (torch.bfloat16, torch.float8_e4m3fn)  # no NumPy dtype in torch: compare as float
  expected = {f"state_dict.{k}": (v.detach().float().numpy() if v.dtype in low_precision
                                  else v.detach().numpy()) for k, v in state.items()}
  expected["history.0"] = np.ones(1, np.float32)
  return obj, expected


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_what_torch_saved(tmp_path, zip_format):
  obj, expected = _tensors()
  path = tmp_path / "ckpt.pth"
  torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
  assert zipfile.is_zipfile(path) == zip_format
  arrays = read_pth(path)
  assert set(arrays) == set(expected)  # epoch, arch and the float 0.5 are dropped
  for name, want in expected.items():
    got = arrays[name]
    if name.endswith(("bf16", "float8")):
      assert got.dtype == (ml_dtypes.bfloat16 if name.endswith("bf16") else ml_dtypes.float8_e4m3fn)
      got = got.astype(np.float32)
    assert got.dtype == want.dtype, name
    np.testing.assert_array_equal(got, want, err_msg=name)


def test_read_checkpoint_reads_pth_under_any_torch_suffix(tmp_path):
  for suffix in (".pt", ".bin", ".ckpt"):
    torch.save({"w": torch.ones(2)}, tmp_path / f"m{suffix}")
    np.testing.assert_array_equal(read_checkpoint(tmp_path / f"m{suffix}")["w"], np.ones(2))


class _RunsShell:
  """Pickles as a call of os.system, the way a malicious checkpoint would."""

  def __init__(self, command: str):
    self.command = command

  def __reduce__(self):
    return (os.system, (self.command,))


def _zip_checkpoint(path, data_pkl: bytes) -> None:
  """A zip in torch.save's layout around a hand-made data.pkl."""
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", data_pkl)
    archive.writestr("archive/byteorder", "little")
    archive.writestr("archive/version", "3\n")


def _legacy_checkpoint(path, payload: bytes) -> None:
  """A legacy torch.save file whose object pickle is `payload`."""
  with open(path, "wb") as f:
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
      pickle.dump(header, f, protocol=2)
    f.write(payload)
    pickle.dump([], f, protocol=2)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_refuses_a_pickle_that_calls_os_system_and_runs_nothing(tmp_path, zip_format):
  sentinel = tmp_path / "SENTINEL"
  payload = pickle.dumps(collections.OrderedDict(
      [("conv1.weight", _RunsShell(f"touch {sentinel}"))]), protocol=2)
  path = tmp_path / "evil.pth"
  (_zip_checkpoint if zip_format else _legacy_checkpoint)(path, payload)
  with pytest.raises(UnsafeCheckpointError, match=r"refused global '(posix|os)\.system'") as e:
    read_checkpoint(path)
  assert str(path) in str(e.value)
  assert not sentinel.exists()


def test_refuses_eval_in_the_legacy_header_pickles(tmp_path):
  sentinel = tmp_path / "SENTINEL"

  class Eval:
    def __reduce__(self):
      return (eval, (f"open({str(sentinel)!r}, 'w')",))

  path = tmp_path / "evil.pth"
  with open(path, "wb") as f:
    pickle.dump(Eval(), f, protocol=2)  # where the magic number belongs
  with pytest.raises(UnsafeCheckpointError, match=r"refused global '(builtins|__builtin__)\.eval'"):
    read_pth(path)
  assert not sentinel.exists()


def test_refuses_torch_globals_outside_tensor_rebuilding(tmp_path):
  # A real torch global that is not on the list (protocol-0 GLOBAL opcode, then call it).
  path = tmp_path / "numpy_tensor.pth"
  _zip_checkpoint(path, b"ctorch._utils\n_rebuild_device_tensor_from_numpy\n(tR.")
  with pytest.raises(UnsafeCheckpointError,
                     match=r"numpy_tensor.pth:archive/data.pkl: refused global "
                           r"'torch._utils._rebuild_device_tensor_from_numpy'"):
    read_pth(path)
  # A whole module saved with torch.save (its class is pickled by reference).
  torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
  with pytest.raises(UnsafeCheckpointError, match=r"'torch\.nn\.modules\.linear\.Linear'"):
    read_pth(tmp_path / "module.pth")


def test_refuses_tensor_views_outside_their_storage(tmp_path):
  path, cut = tmp_path / "ok.pth", tmp_path / "truncated.pth"
  torch.save({"w": torch.ones(100)}, path)
  with zipfile.ZipFile(path) as src, zipfile.ZipFile(cut, "w") as dst:
    for name in src.namelist():
      data = src.read(name)
      dst.writestr(name, data[:40] if name.endswith("/data/0") else data)
  with pytest.raises(ValueError, match=r"reaches element 99 of storage '0', which has 10"):
    read_pth(cut)
  # An expanded (stride 0) view: a 4-byte storage could otherwise ask for any amount of memory.
  torch.save({"w": torch.ones(1).expand(10**6)}, tmp_path / "expanded.pth")
  with pytest.raises(ValueError, match=r"expanded.pth:expanded/data.pkl: tensor of size \(1000000,\) "
                                       r"\(stride \(0,\)\) has more elements than storage"):
    read_pth(tmp_path / "expanded.pth")


def test_explains_files_that_are_not_torch_checkpoints(tmp_path):
  (tmp_path / "notes.pth").write_bytes(b"hello, not a pickle")
  with pytest.raises(ValueError, match=r"notes.pth: not a readable torch checkpoint pickle"):
    read_pth(tmp_path / "notes.pth")
  with open(tmp_path / "arrays.pth", "wb") as f:
    np.savez(f, w=np.ones(2))
  with pytest.raises(ValueError, match=r"arrays.pth: a zip archive without exactly one"):
    read_pth(tmp_path / "arrays.pth")
  with pytest.raises(FileNotFoundError, match=r"missing.pth: no such weight file"):
    read_checkpoint(tmp_path / "missing.pth")
  legacy = tmp_path / "truncated_legacy.pth"
  torch.save({"w": torch.ones(100)}, legacy, _use_new_zipfile_serialization=False)
  legacy.write_bytes(legacy.read_bytes()[:-8])
  with pytest.raises(ValueError, match=r"storage '\d+' claims 100 elements of float32, past the end"):
    read_pth(legacy)


class _StorageView:
  """A legacy storage view: elements [offset, offset + size) of root storage "root"."""

  def __init__(self, offset: int, size: int):
    self.offset, self.size = offset, size


class _ViewTensor:
  """Pickles as torch 0.4's _rebuild_tensor_v2 over a `_StorageView`."""

  def __init__(self, storage: _StorageView, offset: int, size: tuple, stride: tuple):
    self.args = (storage, offset, size, stride, False, collections.OrderedDict())

  def __reduce__(self):
    return (torch._utils._rebuild_tensor_v2, self.args)


class _LegacyPickler(pickle.Pickler):
  def persistent_id(self, obj):
    if isinstance(obj, _StorageView):
      return ("storage", torch.FloatStorage, "root", "cpu", 10, ("view", obj.offset, obj.size))
    return None


def test_reads_legacy_storage_views(tmp_path):
  # Pre-1.0 files address a view of a root storage by element offset; torch 2 no longer writes them.
  path = tmp_path / "views.pth"
  with open(path, "wb") as f:
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
      pickle.dump(header, f, protocol=2)
    _LegacyPickler(f, protocol=2).dump({"w": _ViewTensor(_StorageView(4, 3), 1, (2,), (1,))})
    pickle.dump(["root"], f, protocol=2)
    f.write((10).to_bytes(8, "little") + np.arange(10, dtype="<f4").tobytes())
  np.testing.assert_array_equal(read_pth(path)["w"], [5.0, 6.0])


def test_reads_and_converts_without_torch(tmp_path):
  # A fresh interpreter where `import torch` fails: jaxret must not need it.
  torch.save({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "w.pth")
  code = ("import sys; sys.modules['torch'] = None\n"
          "from jaxret.weights import read_checkpoint\n"
          "import launch.convert_weights\n"
          f"print(read_checkpoint({str(tmp_path / 'w.pth')!r})['w'].sum())")
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "15.0"
