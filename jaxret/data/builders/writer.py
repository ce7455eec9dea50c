"""Streams examples into a TFDS dataset folder (ArrayRecord shards + TFDS metadata), no TensorFlow.

Why not `tfds.core.GeneratorBasedBuilder.download_and_prepare`: in tensorflow-datasets 4.9.10 it
runs without TensorFlow only while a split's serialized examples fit its in-memory shuffle
buffer (`tensorflow_datasets/core/shuffle.py`, `MAX_MEM_BUFFER_SIZE = 1000 << 20`); beyond 1 GB
the buffer spills to disk through `tf.io.gfile.GFile` and fails with "No module named
'tensorflow'" -- VegFru, NABirds or CompCars would. This writer produces the same folder
(`NAME-SPLIT.array_record-XXXXX-of-YYYYY`, `dataset_info.json`, `features.json`,
`metadata.json`, written by `tfds.folder_dataset.write_metadata`), streaming in split order, so
`tfds.data_source(NAME, data_dir=...)` and `tfds.builder_from_directory` read it.

Each split also gets `columns/SPLIT.npz`: every non-image field as one array, so split protocols
can look at labels and cameras without reading any image.

The folder is built under `DATA_DIR/NAME/incomplete.*` and renamed into `DATA_DIR/NAME/VERSION`
only when complete, replacing an earlier preparation; a failed run leaves nothing behind.
"""
import os
import pathlib
import shutil
from typing import Any
import uuid

from array_record.python import array_record_module
import numpy as np
import tensorflow_datasets as tfds

# Bytes after which a split's current shard is closed and a new one started.
SHARD_BYTES = 256 << 20


class SplitWriter:
  """Writes one split's examples, in order, into size-bounded ArrayRecord shards."""

  def __init__(self, folder: pathlib.Path, dataset: str, split: str, features: tfds.features.FeaturesDict):
    self.folder, self.dataset, self.split, self.features = folder, dataset, split, features
    self.shard_lengths: list[int] = []
    self.num_bytes = 0
    self.columns: dict[str, list[Any]] = {}
    self._writer = None
    self._shard_bytes = 0

  def _shard_path(self, shard: int) -> pathlib.Path:
    return self.folder / f"{self.dataset}-{self.split}.array_record.part{shard:05d}"

  def write(self, example: dict[str, Any]) -> None:
    """Serializes `example` (every feature of `features`) and appends it to the split."""
    serialized = self.features.serialize_example(self.features.encode_example(example))
    if self._writer is None or self._shard_bytes >= SHARD_BYTES:
      self._close_shard()
      self._writer = array_record_module.ArrayRecordWriter(
          os.fspath(self._shard_path(len(self.shard_lengths))), "group_size:1")
      self.shard_lengths.append(0)
      self._shard_bytes = 0
    self._writer.write(serialized)
    self.shard_lengths[-1] += 1
    self._shard_bytes += len(serialized)
    self.num_bytes += len(serialized)
    for key, value in example.items():
      if key != "image":
        self.columns.setdefault(key, []).append(value)

  def _close_shard(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def close(self) -> tfds.core.SplitInfo:
    """Closes the last shard, gives shards their final TFDS names, writes the columns file."""
    self._close_shard()
    total = len(self.shard_lengths)
    for shard in range(total):
      self._shard_path(shard).rename(
          self.folder / f"{self.dataset}-{self.split}.array_record-{shard:05d}-of-{total:05d}")
    columns = {}
    for key, values in self.columns.items():
      feature = self.features[key]
      columns[key] = np.asarray(values, dtype=str if feature.np_dtype == np.object_ else feature.np_dtype)
    (self.folder / "columns").mkdir(exist_ok=True)
    np.savez(self.folder / "columns" / f"{self.split}.npz", **columns)
    return tfds.core.SplitInfo(name=self.split, shard_lengths=list(self.shard_lengths), num_bytes=self.num_bytes)


class DatasetWriter:
  """Context manager that builds `data_dir/name/version` atomically.

  Usage: `with DatasetWriter(...) as w: s = w.split("train"); s.write(...); ...; w.finish(...)`.
  Leaving the block without `finish` (an exception) deletes everything written.
  """

  def __init__(self, data_dir: pathlib.Path, name: str, version: str, features: tfds.features.FeaturesDict):
    self.final = pathlib.Path(data_dir) / name / version
    self.name, self.version, self.features = name, version, features
    self.splits: list[SplitWriter] = []
    self.folder: pathlib.Path | None = None

  def __enter__(self) -> "DatasetWriter":
    self.final.parent.mkdir(parents=True, exist_ok=True)
    self.folder = self.final.parent / f"incomplete.{self.version}.{uuid.uuid4().hex}"
    self.folder.mkdir()
    return self

  def split(self, split: str) -> SplitWriter:
    """A writer for the next split."""
    writer = SplitWriter(self.folder, self.name, split, self.features)
    self.splits.append(writer)
    return writer

  def finish(self, description: str, metadata: dict[str, Any]) -> pathlib.Path:
    """Writes the TFDS metadata and moves the folder into place. Returns the dataset folder."""
    split_infos = [s.close() for s in self.splits]
    tfds.folder_dataset.write_metadata(
        data_dir=self.folder, features=self.features, split_infos=split_infos, version=self.version,
        filename_template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", check_data=False,
        description=description, metadata=tfds.core.MetadataDict(metadata))
    if self.final.exists():
      old = self.final.parent / f"replaced.{self.version}.{uuid.uuid4().hex}"
      self.final.rename(old)
      self.folder.rename(self.final)
      shutil.rmtree(old)
    else:
      self.folder.rename(self.final)
    self.folder = None
    return self.final

  def __exit__(self, *exc_info) -> None:
    if self.folder is not None:
      shutil.rmtree(self.folder, ignore_errors=True)
