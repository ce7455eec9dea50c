"""Person re-ID releases laid out as Market-1501's: `bounding_box_train/`, `query/`,
`bounding_box_test/`, identity and camera in each file name, plus an identity-level attribute file.

Splits: `train` (bounding_box_train), `query` (query), `gallery` (bounding_box_test), each in
file-name order. `label` is the identity number from the file name as published: -1 marks junk
boxes and 0 distractors; both are kept (the re-ID protocol needs them). `camera` is the camera
number minus one (c1 -> 0). `attributes` are the identity's attributes, 0-based, or -1 for
every attribute of identities -1 and 0 (not annotated), and of every identity when the attribute
file is absent (a warning says so; plain re-ID does not need it). Files not ending in `.jpg` (such as the
`Thumbs.db` shipped in Market-1501's folders) are not images and are ignored.
"""
import abc
import logging
import pathlib
import re
from typing import Any, ClassVar

import numpy as np

from jaxret.data.builders import reid_attributes
from jaxret.data.builders.builder import Builder, Example, Layout
from jaxret.data.builders.problems import Problems

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


class ReidBuilder(Builder):
  """Shared reader of Market-1501-style folders; subclasses give names and patterns.

  Class attributes:
    folder_names: what the release archive unpacks to.
    pattern: regular expression of an image file name, with named groups `identity`, `camera`
      and any other stored field.
    example_name: a valid file name, for error messages.
    attribute_file, attribute_root, attribute_folders: the .mat file, its root struct, and the
      folders (relative to manual_dir) it may be in besides manual_dir and the dataset folder.
    ATTRIBUTE_NAMES, ATTRIBUTE_SIZES: the attributes stored, in order, and their value counts.
  """
  splits = tuple(SPLIT_FOLDERS)
  folder_names: ClassVar[tuple[str, ...]]
  pattern: ClassVar[re.Pattern]
  example_name: ClassVar[str]
  attribute_file: ClassVar[str]
  attribute_root: ClassVar[str]
  attribute_folders: ClassVar[tuple[str, ...]]
  ATTRIBUTE_NAMES: ClassVar[tuple[str, ...]]
  ATTRIBUTE_SIZES: ClassVar[tuple[int, ...]]

  @abc.abstractmethod
  def fields_from_name(self, match: re.Match) -> dict[str, Any]:
    """Stored fields parsed from a file name (identity, camera and dataset-specific ones)."""

  def _attribute_path(self, manual_dir: pathlib.Path, root: pathlib.Path) -> pathlib.Path | None:
    candidates = [manual_dir / self.attribute_file, root / self.attribute_file]
    candidates += [manual_dir / folder / self.attribute_file for folder in self.attribute_folders]
    for candidate in candidates:
      if candidate.exists():
        return candidate
    log.warning("%s not found (looked for %s): preparing without identity attributes (all -1); "
                "attribute-based methods need it: %s", self.attribute_file, ", ".join(map(str, candidates)),
                self.layout)
    return None

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, self.folder_names, SPLIT_FOLDERS["train"])
    attribute_path = self._attribute_path(manual_dir, root)
    table = {} if attribute_path is None else reid_attributes.load(
        attribute_path, self.attribute_root, self.ATTRIBUTE_NAMES, self.ATTRIBUTE_SIZES)
    unannotated = np.full(len(self.ATTRIBUTE_NAMES), -1, np.int32)
    splits = {}
    for split, folder in SPLIT_FOLDERS.items():
      if not (root / folder).is_dir():
        raise FileNotFoundError(f"{root / folder} is not a folder: expected {self.layout}")
      examples = []
      for path in sorted((root / folder).iterdir()):
        if path.suffix.lower() != ".jpg":
          continue
        match = self.pattern.fullmatch(path.name)
        if match is None:
          problems.report(f"{path}: expected a file name like {self.example_name} (identity, camera, ...)", split)
          continue
        fields = self.fields_from_name(match)
        identity = fields["label"]
        if attribute_path is not None and identity > 0 and identity not in table:
          problems.report(f"{path}: identity {identity:04d} has no attributes in {attribute_path} "
                          f"(train or test): expected every identity > 0 to be annotated", split)
          continue
        fields["attributes"] = table.get(identity, unannotated)
        examples.append(Example(image=path, filename=f"{folder}/{path.name}", fields=fields))
      splits[split] = examples
    metadata = {"attribute_names": list(self.ATTRIBUTE_NAMES), "attribute_sizes": list(self.ATTRIBUTE_SIZES),
                "attribute_file": str(attribute_path) if attribute_path else None,
                "label": "identity number (-1 junk, 0 distractor)"}
    return Layout(splits=splits, metadata=metadata)
