"""Datasets by name: `config.dataset` -> train / val / test sources and their label spaces.

`synthetic` is generated on the fly; the others are read from `config.data_dir`, prepared by
`python -m launch.prepare_data` (jaxret.data.builders) or, for TFDS's stock builders, by
`tfds build` (jaxret.data.stock). The splits follow the record of `config.eval.protocol`
(`jaxret.protocols`):
- retrieval: open-set classes (`splits.OPEN_SET_SPLITS`, else the first half of the classes
  train); datasets with query / gallery splits (In-Shop) use them.
- reid: train identities train; query against gallery; validation identities carved from train.
- hashing: query = the test split, database = the train split (validation images carved from
  each training class).
- classification: closed set; the test split's images of the training classes are scored
  (validation images carved from each training class, as for hashing; no gallery).
"""
import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxret import protocols
from jaxret.data import builders, pipeline, splits, stock, synthetic
from jaxret.data.subset import Subset
from jaxret.user_errors import InputError

DATASETS = ("synthetic", *sorted(builders.BUILDERS), *sorted(stock.STOCK_DATASETS))
# Open-set protocols that take training and test classes from different official splits.
OPEN_SET_SOURCES = {"fashion_mnist": ("train", "test")}  # classes 0-4 train, test images of 5-9


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
  """Random-access sources (grain protocol: `len`, `[i] -> dict`) for one protocol.

  `train` labels are remapped by the pipeline to 0..num_train_classes-1. `test` (and `val`)
  are queries ranked against `test_gallery` (`val_gallery`); without a gallery a split is its
  own gallery (retrieval: each query excludes itself; re-ID: split by identity and camera).
  Open-set protocols: `val` and `test` hold classes never seen in training. Hashing and
  classification: they are held-out images of the training classes (hashing's gallery is the
  training set; classification has none).
  """
  train: Any
  val: Any | None
  test: Any
  train_classes: tuple[int, ...]
  attribute_sizes: tuple[int, ...] = ()
  test_gallery: Any | None = None
  val_gallery: Any | None = None

  @property
  def num_train_classes(self) -> int:
    return len(self.train_classes)


def check_available(config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming `config.dataset` when it is unknown, or DatasetNotPreparedError
  (with the command to run) when it is not prepared in `config.data_dir`."""
  if config.dataset not in DATASETS:
    raise InputError(f"config.dataset={config.dataset!r} is not a known dataset: expected one of {DATASETS}")
  if config.dataset != "synthetic":
    if not config.data_dir:
      raise InputError(f"config.data_dir is empty: dataset {config.dataset!r} is read from a TFDS data folder "
                       f"made by `python -m launch.prepare_data --dataset {config.dataset} --manual_dir RAW "
                       "--data_dir DIR`; pass --config.data_dir=DIR")
    names, read = _splits_of(config)
    read(names[0])


def load(config: ml_collections.ConfigDict) -> DatasetSplits:
  """Builds the splits of `config.dataset` for `config.eval.protocol` (`jaxret.protocols`), with a
  validation split for model selection."""
  check_available(config)
  protocol = protocols.get_protocol(config)
  if config.dataset != "synthetic":
    return _load_prepared(config, protocol)
  num_classes = synthetic.NUM_CLASSES
  images_per_class = config.data.synthetic_images_per_class

  def source(classes):
    return synthetic.SyntheticSource(
        classes, images_per_class=images_per_class, image_size=config.image_size,
        seed=config.data.synthetic_seed, num_classes=num_classes)

  attribute_sizes = tuple(len(v) for v in synthetic.ATTRIBUTE_VALUES)
  if protocol.closed_set:
    everything = source(range(num_classes))
    positions = splits.closed_set_images(
        images_per_class, config.data.val_images_per_class, config.data.query_images_per_class)

    def images(within_class):
      return Subset(everything, [c * images_per_class + i for c in range(num_classes) for i in within_class])

    train, val, test = map(images, positions)
    return _closed_set(protocol, train, val, test, tuple(range(num_classes)), attribute_sizes)

  train_pool, test_classes = splits.paper_open_set_classes(config.dataset)
  return _open_set(config, train_pool, test_classes, source, source, attribute_sizes)


def _closed_set(protocol: protocols.Protocol, train, val, test, train_classes: tuple[int, ...],
                attribute_sizes: tuple[int, ...]) -> DatasetSplits:
  """Closed-set protocols: val and test are held-out images of the training classes (hashing ranks
  them against the training set)."""
  gallery = train if protocol.gallery_is_train else None
  return DatasetSplits(train=train, val=val if len(val) else None, test=test, test_gallery=gallery,
                       val_gallery=gallery, train_classes=train_classes, attribute_sizes=attribute_sizes)


def _open_set(config: ml_collections.ConfigDict, train_pool, test_classes, train_of, test_of,
              attribute_sizes: tuple[int, ...]) -> DatasetSplits:
  """Open-set protocols: `config.data.val_classes` of the `train_pool` classes are carved out for
  validation; `train_of(classes)` / `test_of(classes)` give the sources of those classes."""
  train_classes, val_classes = splits.carve_validation(train_pool, config.data.val_classes)
  return DatasetSplits(train=train_of(train_classes), val=train_of(val_classes) if val_classes else None,
                       test=test_of(test_classes), train_classes=tuple(train_classes),
                       attribute_sizes=attribute_sizes)


def _splits_of(config: ml_collections.ConfigDict):
  """(split names, read(split) -> source) of a prepared dataset."""
  name = config.dataset
  if name in stock.STOCK_DATASETS:
    return stock.STOCK_DATASETS[name][1], lambda split: stock.StockSource(name, config.data_dir, split)
  return builders.BUILDERS[name].splits, lambda split: builders.load_split(name, config.data_dir, split)


def _load_prepared(config: ml_collections.ConfigDict, protocol: protocols.Protocol) -> DatasetSplits:
  name = config.dataset
  available, read = _splits_of(config)

  def of_classes(source):
    return lambda classes: Subset(source, np.flatnonzero(np.isin(pipeline.labels_of(source), list(classes))))

  if protocol.closed_set:
    test_split = "test" if "test" in available else available[-1]  # food101: validation
    train_split = "+".join(s for s in available if s not in (test_split, "query", "gallery"))
    train_all, test = read(train_split), read(test_split)
    labels = pipeline.labels_of(train_all)
    train_idx, val_idx = splits.carve_images(labels, config.data.val_images_per_class)
    return _closed_set(protocol, Subset(train_all, train_idx), Subset(train_all, val_idx), test,
                       tuple(int(c) for c in np.unique(labels)), _attribute_sizes(train_all))

  if "query" in available:  # re-ID and In-Shop: official query / gallery
    train_all = read("train")
    data = _open_set(config, np.unique(pipeline.labels_of(train_all)).tolist(), (), of_classes(train_all),
                     lambda _: read("query"), _attribute_sizes(train_all))
    return dataclasses.replace(data, test_gallery=read("gallery"))

  if protocol.needs_query_gallery:
    raise InputError(f"config.eval.protocol={protocol.name!r} needs query / gallery splits; dataset {name!r} "
                     f"has {available}")
  train_split, test_split = OPEN_SET_SOURCES.get(name, ("+".join(available),) * 2)
  train_source, test_source = read(train_split), read(test_split)
  classes = np.unique(pipeline.labels_of(train_source)).tolist()
  if name in splits.OPEN_SET_SPLITS:
    if len(classes) != splits.OPEN_SET_SPLITS[name][0]:
      raise InputError(f"dataset {name!r} in {config.data_dir} has {len(classes)} classes; its open-set "
                       f"protocol expects {splits.OPEN_SET_SPLITS[name][0]} (an incomplete preparation?)")
    train_pool, test_classes = splits.paper_open_set_classes(name)
  else:
    train_pool, test_classes = splits.open_set_classes(len(classes))
  train_pool, test_classes = [classes[i] for i in train_pool], [classes[i] for i in test_classes]
  return _open_set(config, train_pool, test_classes, of_classes(train_source), of_classes(test_source),
                   _attribute_sizes(train_source))


def _attribute_sizes(source) -> tuple[int, ...]:
  return tuple(source.metadata.get("attribute_sizes", ()))
