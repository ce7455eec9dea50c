"""grain pipelines: deterministic training and evaluation batches, sharded per process.

Every process sees the same global order of examples; process p reads rows
[p * b, (p + 1) * b) of each global batch (b = global batch / process count), so a run on
P processes assembles exactly the global batches a one-process run reads.
"""
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize(image: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` -> float32, scaled to [0, 1] then standardised with ImageNet statistics."""
  return (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


class ProcessRows(grain.MapDataset):
  """This process's contiguous block of rows of every global batch of `parent`."""

  def __init__(self, parent: grain.MapDataset, global_batch: int, process_index: int, process_count: int):
    super().__init__(parent)
    if global_batch % process_count:
      raise ValueError(f"global batch {global_batch} is not divisible by {process_count} processes")
    self._global_batch = global_batch
    self._rows = global_batch // process_count
    self._offset = process_index * self._rows

  def __len__(self) -> int:
    return len(self._parent) // self._global_batch * self._rows

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, row = divmod(index, self._rows)
    return self._parent[batch * self._global_batch + self._offset + row]

  def __str__(self) -> str:
    return f"ProcessRows(rows={self._rows}, offset={self._offset}, global_batch={self._global_batch})"


def train_dataset(
    source: Any, *, train_classes: Sequence[int], global_batch: int, seed: int,
    random_flip: bool = True, process_index: int = 0, process_count: int = 1,
    num_workers: int = 0) -> grain.IterDataset:
  """Endless shuffled training batches for this process (reshuffled every epoch).

  Labels are remapped to 0..len(train_classes)-1. Yields dicts of numpy arrays:
  `image` float32 `[b, H, W, 3]`, `label` int32 `[b]`, plus the source's other fields.
  The iterator is checkpointable (`get_state` / `set_state`).
  """
  lookup = {c: i for i, c in enumerate(train_classes)}

  def prepare(example, rng: np.random.Generator):
    example = dict(example)
    image = example["image"]
    if random_flip and rng.random() < 0.5:
      image = image[:, ::-1]
    example["image"] = normalize(image)
    example["label"] = np.int32(lookup[int(example["label"])])
    return example

  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  ds = ds.random_map(prepare, seed=seed)  # before slicing: augmentation depends on global position
  ds = ProcessRows(ds, global_batch, process_index, process_count)
  ds = ds.batch(global_batch // process_count, drop_remainder=True).to_iter_dataset()
  if num_workers:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return ds


class Padded(grain.MapDataset):
  """`parent` padded with copies of its first example to a multiple of `multiple`; adds `valid`."""

  def __init__(self, parent: grain.MapDataset, multiple: int):
    super().__init__(parent)
    self._size = len(parent)
    self._length = -(-self._size // multiple) * multiple

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    example = dict(self._parent[index if index < self._size else 0])
    example["valid"] = np.bool_(index < self._size)
    return example

  def __str__(self) -> str:
    return f"Padded(size={self._size}, length={self._length})"


def eval_dataset(
    source: Any, *, global_batch: int, process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Every example of `source` once, in order, in batches padded with `valid=False` rows."""

  def prepare(example):
    example = dict(example)
    example["image"] = normalize(example["image"])
    return example

  ds = Padded(grain.MapDataset.source(source).map(prepare), global_batch)
  ds = ProcessRows(ds, global_batch, process_index, process_count)
  return ds.batch(global_batch // process_count, drop_remainder=True)
