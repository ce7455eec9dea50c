"""A random-access source restricted to some of its examples."""
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxret.data import pipeline


class Subset:
  """Examples `indices` of `source`, in that order (grain `RandomAccessDataSource` protocol).

  An example's "index" field, when present, becomes its position in the subset.
  """

  def __init__(self, source: Any, indices: Sequence[int]):
    self.source = source
    self.indices = np.asarray(indices, np.int64)
    if self.indices.size and not (0 <= self.indices.min() and self.indices.max() < len(source)):
      raise ValueError(f"Subset indices span {self.indices.min()}..{self.indices.max()}: expected "
                       f"0..{len(source) - 1} for {source!r}")

  def __len__(self) -> int:
    return len(self.indices)

  @property
  def labels(self) -> np.ndarray:
    """The label of every example, `[len(self)]` (`pipeline.labels_of` the source)."""
    return pipeline.labels_of(self.source)[self.indices]

  def __getitem__(self, index: int) -> dict:
    example = dict(self.source[int(self.indices[index])])
    if "index" in example:
      example["index"] = np.int32(index % len(self))
    return example

  def __repr__(self) -> str:
    return f"Subset({len(self)} of {self.source!r})"
