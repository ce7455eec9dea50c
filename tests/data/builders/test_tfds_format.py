"""The prepared folders are plain TFDS datasets: readable by TFDS and grain, no TensorFlow needed."""
import pathlib
import pickle
import subprocess
import sys
import textwrap

import grain
import numpy as np
import tensorflow_datasets as tfds

from jaxret.data import builders
from jaxret.data.builders import writer

REPO = pathlib.Path(__file__).resolve().parents[3]


def write_vegfru(raw, jpeg):
  (raw / "vegfru_list").mkdir(parents=True)
  rows = {"train": [("veg200_images/basil/a.jpg", 5), ("fru92_images/fig/b.jpg", 210)],
          "val": [("veg200_images/basil/c.jpg", 5)], "test": [("fru92_images/fig/d.jpg", 210)]}
  for n, (split, items) in enumerate(rows.items()):
    (raw / "vegfru_list" / f"vegfru_{split}.txt").write_text("".join(f"{p} {l}\n" for p, l in items))
    for k, (path, _) in enumerate(items):
      jpeg(raw / path, index=3 * n + k)


def test_tfds_reads_the_prepared_folder(tmp_path, jpeg):
  write_vegfru(tmp_path / "raw", jpeg)
  builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  ours = builders.load_split("vegfru", tmp_path / "tfds", "train")
  theirs = tfds.data_source("vegfru", data_dir=str(tmp_path / "tfds"), split="train")
  assert len(theirs) == len(ours) == 2
  assert theirs[1]["filename"] == b"fru92_images/fig/b.jpg" and int(theirs[1]["label"]) == 210
  assert isinstance(theirs[1]["image"], bytes)  # the original JPEG bytes
  info = tfds.builder_from_directory(str(tmp_path / "tfds" / "vegfru" / "1.0.0")).info
  assert info.splits["test"].num_examples == 1


def test_prepare_and_load_work_where_tensorflow_cannot_be_imported(tmp_path, jpeg):
  """Hides TensorFlow from a fresh interpreter, so this holds where TensorFlow is installed too."""
  write_vegfru(tmp_path / "raw", jpeg)
  script = textwrap.dedent(f"""
      import importlib.machinery
      import importlib.util
      import sys

      class WithoutTensorFlow:  # the path finder, as if TensorFlow were not installed
        def find_spec(self, name, path=None, target=None):
          if name == "tensorflow" or name.startswith("tensorflow."):
            return None
          return importlib.machinery.PathFinder.find_spec(name, path, target)

        def invalidate_caches(self):
          importlib.machinery.PathFinder.invalidate_caches()

      sys.meta_path[:] = [WithoutTensorFlow() if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
      assert importlib.util.find_spec("tensorflow") is None
      from jaxret.data import builders
      summary = builders.prepare("vegfru", {str(tmp_path / "raw")!r}, {str(tmp_path / "tfds")!r})
      source = builders.load_split("vegfru", {str(tmp_path / "tfds")!r}, "train")
      assert source[1]["image"].shape == (40, 24, 3), source[1]["image"].shape
      assert "tensorflow" not in sys.modules
      print(summary["splits"]["train"]["images"])
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split()[-1] == "2"


def test_source_pickles_batches_and_feeds_grain(tmp_path, jpeg, same_colour):
  write_vegfru(tmp_path / "raw", jpeg)
  builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  source = builders.load_split("vegfru", tmp_path / "tfds", "train+val")
  assert len(source) == 3 and "train+val" in repr(source)
  copy = pickle.loads(pickle.dumps(source))  # grain worker processes receive a pickled source
  np.testing.assert_array_equal(copy[2]["image"], source[2]["image"])
  batch = source.__getitems__([2, 0])
  assert [int(e["index"]) for e in batch] == [2, 0] and int(source[-1]["index"]) == 2
  same_colour(batch[0]["image"], 3)
  labels = grain.MapDataset.source(source).map(lambda e: int(e["label"]))
  assert list(labels) == [5, 210, 5]
  np.testing.assert_array_equal(source.columns()["label"], [5, 210, 5])


def test_preparing_again_replaces_the_dataset(tmp_path, jpeg):
  write_vegfru(tmp_path / "raw", jpeg)
  builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  (tmp_path / "raw" / "vegfru_list" / "vegfru_test.txt").write_text(
      "fru92_images/fig/d.jpg 210\nveg200_images/basil/a.jpg 5\n")
  summary = builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  assert summary["splits"]["test"]["images"] == 2
  assert len(builders.load_split("vegfru", tmp_path / "tfds", "test")) == 2
  assert [p.name for p in (tmp_path / "tfds" / "vegfru").iterdir()] == ["1.0.0"]


def test_large_splits_are_written_in_several_shards_read_in_order(tmp_path, jpeg, monkeypatch):
  write_vegfru(tmp_path / "raw", jpeg)
  monkeypatch.setattr(writer, "SHARD_BYTES", 1)  # a new shard after every example
  builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  folder = tmp_path / "tfds" / "vegfru" / "1.0.0"
  assert sorted(p.name for p in folder.glob("vegfru-train.*")) == [
      "vegfru-train.array_record-00000-of-00002", "vegfru-train.array_record-00001-of-00002"]
  source = builders.load_split("vegfru", tmp_path / "tfds", "train")
  assert [source[i]["filename"] for i in range(2)] == ["veg200_images/basil/a.jpg", "fru92_images/fig/b.jpg"]
