"""Tests for jaxret/weights/safetensors_file.py against bytes written by the format's spec."""
import json

import ml_dtypes
import numpy as np
import pytest

from jaxret.weights import read_checkpoint, read_safetensors


def _file(path, header: dict, data: bytes, pad: int = 0) -> None:
  """header length (u64 little-endian), JSON header (space-padded), data bytes."""
  text = json.dumps(header).encode() + b" " * pad
  path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def test_reads_tensors_by_the_spec(tmp_path):
  # Bytes spelled out: F32 [[1, 2], [3, -0.5]], BF16 [1, -2.5, 0.5] (the high halves of float32),
  # I64 [7], BOOL [1, 0]; entries out of file order and with metadata, as writers produce.
  f32 = bytes.fromhex("0000803f 00000040 00004040 000000bf".replace(" ", ""))
  bf16 = bytes.fromhex("803f 20c0 003f".replace(" ", ""))
  i64 = (7).to_bytes(8, "little")
  header = {"__metadata__": {"format": "pt"},
            "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
            "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "n": {"dtype": "I64", "shape": [], "data_offsets": [22, 30]},
            "m": {"dtype": "BOOL", "shape": [2], "data_offsets": [30, 32]},
            "e": {"dtype": "F16", "shape": [0, 4], "data_offsets": [32, 32]}}
  path = tmp_path / "w.safetensors"
  _file(path, header, f32 + bf16 + i64 + b"\x01\x00", pad=5)
  arrays = read_checkpoint(path)
  assert sorted(arrays) == ["a", "b", "e", "m", "n"]
  np.testing.assert_array_equal(arrays["a"], np.array([[1, 2], [3, -0.5]], np.float32))
  assert arrays["b"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(arrays["b"].astype(np.float32), [1, -2.5, 0.5])
  assert arrays["n"].shape == () and arrays["n"] == 7 and arrays["n"].dtype == np.int64
  np.testing.assert_array_equal(arrays["m"], [True, False])
  assert arrays["e"].shape == (0, 4) and arrays["e"].dtype == np.float16
  arrays["a"][0, 0] = 9  # a private, writable copy


@pytest.mark.parametrize("entry, data, message", [
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}, bytes(16),
     r"tensor 'w': data_offsets \[0, 32\]; expected \[begin, end\] within the 16 data bytes"),
    ({"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}, bytes(16),
     r"tensor 'w': 16 bytes, but F32 \[3\] needs 12"),
    ({"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}, bytes(16),
     r"tensor 'w': dtype 'C64'; expected one of"),
    ({"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}, bytes(16),
     r"tensor 'w': shape \[-4\]; expected a list of non-negative ints"),
])
def test_explains_malformed_entries(tmp_path, entry, data, message):
  path = tmp_path / "bad.safetensors"
  _file(path, {"w": entry}, data)
  with pytest.raises(ValueError, match=f"bad.safetensors: {message}"):
    read_safetensors(path)


def test_explains_malformed_headers(tmp_path):
  path = tmp_path / "bad.safetensors"
  path.write_bytes((1000).to_bytes(8, "little") + b"{}")
  with pytest.raises(ValueError, match=r"bad.safetensors: header size 1000 does not fit the file"):
    read_safetensors(path)
  path.write_bytes((4).to_bytes(8, "little") + b"{x}!")
  with pytest.raises(ValueError, match=r"bad.safetensors: header is not UTF-8 JSON"):
    read_safetensors(path)
  path.write_bytes(b"abc")
  with pytest.raises(ValueError, match=r"bad.safetensors: 3 bytes; a .safetensors file starts"):
    read_safetensors(path)


def test_npz_is_read_without_pickle(tmp_path):
  np.savez(tmp_path / "w.npz", w=np.arange(3.0), s=np.array("resnet18"))
  arrays = read_checkpoint(tmp_path / "w.npz")
  np.testing.assert_array_equal(arrays["w"], np.arange(3.0))
  assert str(arrays["s"]) == "resnet18"
  np.savez(tmp_path / "objects.npz", w=np.array([{"a": 1}], dtype=object))
  with pytest.raises(ValueError, match=r"objects.npz: array 'w' cannot be read without pickle"):
    read_checkpoint(tmp_path / "objects.npz")
