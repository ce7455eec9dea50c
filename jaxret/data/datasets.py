"""Datasets by name: `config.dataset` -> train / val / test sources and their label spaces."""
import dataclasses
from typing import Any

import ml_collections

from jaxret.data import splits
from jaxret.data import synthetic
from jaxret.data.subset import Subset

DATASETS = ("synthetic",)


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
  """Random-access sources (grain protocol: `len`, `[i] -> dict`) for one protocol.

  `train` labels are remapped by the pipeline to 0..num_train_classes-1. Open-set protocols
  (retrieval, re-ID): `val` and `test` hold classes never seen in training, each scored against
  itself. Hashing: `val` and `test` are queries of the training classes, scored against
  `database` (the training images).
  """
  train: Any
  val: Any | None
  test: Any
  train_classes: tuple[int, ...]
  attribute_sizes: tuple[int, ...] = ()
  database: Any | None = None

  @property
  def num_train_classes(self) -> int:
    return len(self.train_classes)


def check_available(config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming `config.dataset` when it is unknown or not prepared."""
  if config.dataset not in DATASETS:
    raise ValueError(f"config.dataset={config.dataset!r} is not a known dataset: expected one of {DATASETS}")


def load(config: ml_collections.ConfigDict) -> DatasetSplits:
  """Builds the splits of `config.dataset` for `config.eval.protocol`, with a validation split
  for model selection."""
  check_available(config)
  num_classes = synthetic.NUM_CLASSES
  images_per_class = config.data.synthetic_images_per_class

  def source(classes):
    return synthetic.SyntheticSource(
        classes, images_per_class=images_per_class, image_size=config.image_size,
        seed=config.data.synthetic_seed, num_classes=num_classes)

  attribute_sizes = tuple(len(v) for v in synthetic.ATTRIBUTE_VALUES)
  if config.eval.protocol == "hashing":
    everything = source(range(num_classes))
    positions = splits.closed_set_images(
        images_per_class, config.data.val_images_per_class, config.data.query_images_per_class)

    def images(within_class):
      return Subset(everything, [c * images_per_class + i for c in range(num_classes) for i in within_class])

    train, val, test = map(images, positions)
    return DatasetSplits(train=train, val=val if len(val) else None, test=test, database=train,
                         train_classes=tuple(range(num_classes)), attribute_sizes=attribute_sizes)

  train_pool, test_classes = splits.open_set_classes(num_classes)
  train_classes, val_classes = splits.carve_validation(train_pool, config.data.val_classes)
  return DatasetSplits(
      train=source(train_classes),
      val=source(val_classes) if val_classes else None,
      test=source(test_classes),
      train_classes=tuple(train_classes),
      attribute_sizes=attribute_sizes)
