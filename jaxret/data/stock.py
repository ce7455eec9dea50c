"""TFDS's own builders (cars196, stanford_online_products, food101, caltech_birds2011), read with
`tfds.data_source` from an ArrayRecord build, without TensorFlow.

Preparing them needs TensorFlow (TFDS's stock builders encode images with it), once, anywhere:

  pip install tensorflow tensorflow-datasets
  tfds build cars196 --data_dir DIR --file_format=array_record [--manual_dir RAW]

then train with `--config.data_dir=DIR`. Examples come out in jaxret's layout: `image` uint8
`[H, W, 3]`, `label` int32 (SOP: `class_id`), `index` int32.
"""
import os
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxret.user_errors import UserError

# name -> (label field, splits).
STOCK_DATASETS = {
    "cars196": ("label", ("train", "test")),
    "stanford_online_products": ("class_id", ("train", "test")),
    "food101": ("label", ("train", "validation")),
    "caltech_birds2011": ("label", ("train", "test")),
}


class StockNotPreparedError(UserError, FileNotFoundError):
  """A stock TFDS dataset is missing from `data_dir`: the message says how to build it."""


def build_command(name: str, data_dir: str) -> str:
  return f"tfds build {name} --data_dir {data_dir} --file_format=array_record"


class StockSource:
  """One split of a stock TFDS dataset (grain `RandomAccessDataSource` protocol)."""

  def __init__(self, name: str, data_dir: str, split: str):
    if name not in STOCK_DATASETS:
      raise ValueError(f"{name!r} is not a stock TFDS dataset jaxret reads: expected one of {sorted(STOCK_DATASETS)}")
    self.name, self.split = name, split
    self._label = STOCK_DATASETS[name][0]
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # TFDS raises several types for a missing or non-ArrayRecord build
      raise StockNotPreparedError(
          f"dataset {name!r} split {split!r} could not be read from data_dir={os.fspath(data_dir)} ({e}). "
          f"Build it once where TensorFlow is installed: `{build_command(name, data_dir)}`") from e
    self.metadata: dict[str, Any] = {}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index) % len(self)
    record = self._source[index]
    image = np.asarray(record["image"], np.uint8)
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    return {"image": image, "label": np.int32(record[self._label]), "index": np.int32(index)}

  def __repr__(self) -> str:
    return f"StockSource({self.name!r}, split={self.split!r}, {len(self)} examples)"
