"""Tests for jaxret/data/builders/fashion_mnist.py."""
import gzip

import numpy as np
import pytest

from jaxret.data import builders


def idx(array: np.ndarray, magic: int) -> bytes:
  """`array` (uint8) as an IDX file: big-endian magic, then one int32 per dimension, then data."""
  return np.array([magic, *array.shape], ">i4").tobytes() + array.astype(np.uint8).tobytes()


def write_idx_files(folder, train=5, test=3, compress=True):
  rng = np.random.default_rng(0)
  folder.mkdir(parents=True, exist_ok=True)
  arrays = {}
  for prefix, n in (("train", train), ("t10k", test)):
    images, labels = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
    arrays[prefix] = images, labels
    files = {f"{prefix}-images-idx3-ubyte": idx(images, 2051), f"{prefix}-labels-idx1-ubyte": idx(labels, 2049)}
    for stem, data in files.items():
      if compress:
        (folder / (stem + ".gz")).write_bytes(gzip.compress(data))
      else:
        (folder / stem).write_bytes(data)
  return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_images_become_rgb_and_labels_are_kept(tmp_path, compress):
  arrays = write_idx_files(tmp_path / "raw", compress=compress)
  summary = builders.prepare("fashion_mnist", tmp_path / "raw", tmp_path / "tfds")
  assert summary["dataset"] == "fashion_mnist"
  assert summary["path"].endswith("jaxret_fashion_mnist/1.0.0")
  assert {s: v["images"] for s, v in summary["splits"].items()} == {"train": 5, "test": 3}
  test = builders.load_split("fashion_mnist", tmp_path / "tfds", "test")
  images, labels = arrays["t10k"]
  for i in range(3):
    example = test[i]
    assert example["image"].shape == (28, 28, 3) and example["image"].dtype == np.uint8
    np.testing.assert_array_equal(example["image"], np.repeat(images[i][..., None], 3, axis=2))  # lossless
    assert int(example["label"]) == labels[i]
  assert test[0]["filename"].startswith("t10k-images-idx3-ubyte")


def test_truncated_idx_file_is_named(tmp_path):
  write_idx_files(tmp_path / "raw", compress=False)
  path = tmp_path / "raw" / "train-images-idx3-ubyte"
  path.write_bytes(path.read_bytes()[:-100])
  with pytest.raises(builders.BadExampleError, match=r"train-images-idx3-ubyte: expected 16 \+ 5x28x28 bytes"):
    builders.prepare("fashion_mnist", tmp_path / "raw", tmp_path / "tfds")
  write_idx_files(tmp_path / "raw", compress=False)
  (tmp_path / "raw" / "t10k-labels-idx1-ubyte").unlink()
  with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\(\.gz\)"):
    builders.prepare("fashion_mnist", tmp_path / "raw", tmp_path / "tfds")
