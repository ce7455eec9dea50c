"""The builder contract: what a dataset builder declares and what it reads from `manual_dir`.

A builder reads the annotation files of a dataset's published layout and lists its examples;
`jaxret.data.builders.prepare` checks every image, writes the TFDS files and the summary. A
builder never writes anything itself, so every dataset is stored the same way.

Stored features of every dataset (besides the builder's `EXTRA_FEATURES`):

- `image`: the original encoded file bytes (`tfds.features.Tensor(shape=(), dtype=object)`,
  which needs no TensorFlow to encode, unlike `tfds.features.Image` for arrays);
- `label`: int32, the class / identity, as documented by each builder;
- `filename`: the image's path relative to the dataset folder (or `file#index` for images
  stored in one file).
"""
import abc
import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

from jaxret.data.builders.problems import Problems


def int32(shape: Sequence[int] = ()) -> tfds.features.Tensor:
  """An int32 feature of `shape`."""
  return tfds.features.Tensor(shape=tuple(shape), dtype=np.int32)


def float32(shape: Sequence[int] = ()) -> tfds.features.Tensor:
  """A float32 feature of `shape`."""
  return tfds.features.Tensor(shape=tuple(shape), dtype=np.float32)


@dataclasses.dataclass
class Example:
  """One image to prepare.

  Attributes:
    image: the image file, or its encoded bytes when the dataset packs images in one file.
    filename: the path stored with the example (relative to the dataset folder).
    fields: the stored fields besides `image` and `filename` (`label`, `camera`, ...).
    origin: `file:line` of the annotation that listed it, for error messages.
  """
  image: pathlib.Path | bytes
  filename: str
  fields: dict[str, Any]
  origin: str | None = None


@dataclasses.dataclass
class Layout:
  """What a builder found in `manual_dir`: the examples of each split, and dataset metadata
  (attribute names and sizes, class names, ...) stored in the prepared dataset's metadata.json."""
  splits: dict[str, list[Example]]
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


class Builder(abc.ABC):
  """Base class of jaxret's dataset builders (one subclass per dataset).

  Class attributes:
    name: the TFDS dataset name, i.e. the folder under `data_dir`.
    version: the TFDS version folder; bump it when the stored features change.
    splits: the split names, in the order they are prepared.
    layout: the expected `manual_dir` layout, in words, for error messages.
    EXTRA_FEATURES: stored features besides `image`, `label` and `filename`.
  """
  name: ClassVar[str]
  version: ClassVar[str] = "1.0.0"
  splits: ClassVar[tuple[str, ...]]
  layout: ClassVar[str]
  EXTRA_FEATURES: ClassVar[dict[str, tfds.features.FeatureConnector]] = {}

  def features(self) -> tfds.features.FeaturesDict:
    """Every stored feature."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(), dtype=np.object_),
        "label": int32(),
        "filename": tfds.features.Text(),
        **self.EXTRA_FEATURES,
    })

  @abc.abstractmethod
  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    """Parses the annotation files under `manual_dir` and lists every split's examples.

    Bad annotation lines go to `problems`; a missing file or folder raises FileNotFoundError.
    """

  def finish(self, fields: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """Fields that depend on the decoded image's size (a crop box, ...); default: unchanged.

    Raises ValueError saying what was expected when the image cannot be used.
    """
    del height, width
    return fields

  def find_root(self, manual_dir: pathlib.Path, folder_names: Sequence[str], marker: str) -> pathlib.Path:
    """The dataset folder: `manual_dir/<one of folder_names>`, or `manual_dir` itself.

    Args:
      manual_dir: where the user put the downloaded dataset.
      folder_names: the folder names the dataset's archives unpack to.
      marker: a file or folder inside the dataset folder that identifies it.
    Raises:
      FileNotFoundError: naming `manual_dir`, every place looked at and the expected layout.
    """
    candidates = [manual_dir / n for n in folder_names] + [manual_dir]
    for candidate in candidates:
      if (candidate / marker).exists():
        return candidate
    looked = ", ".join(str(c / marker) for c in candidates)
    raise FileNotFoundError(
        f"manual_dir={manual_dir} does not hold {self.name}: none of {looked} exists; expected {self.layout}")
