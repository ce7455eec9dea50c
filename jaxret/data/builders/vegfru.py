"""VegFru (Hou et al., ICCV 2017): 200 vegetable and 92 fruit categories, 160,731 images.

manual_dir layout (the released archives, unpacked side by side)::

  vegfru_list/vegfru_train.txt     '<image path> <label>' (29,200)
  vegfru_list/vegfru_val.txt       (14,600)
  vegfru_list/vegfru_test.txt      (116,931)
  veg200_images/<category>/<file>.jpg
  fru92_images/<category>/<file>.jpg

Image paths in the lists are relative to the folder holding `vegfru_list/`, labels are 0..291
(vegetables 0..199, fruits 200..291). Splits `train`, `val`, `test`; `label` is the list's
label. metadata.json `class_names[label]` is the category folder name.
"""
import pathlib

from jaxret.data.builders.annotation_table import expect_fields, read_table, require, to_int
from jaxret.data.builders.builder import Builder, Example, Layout
from jaxret.data.builders.problems import Problems, where

NUM_CLASSES = 292


class VegFru(Builder):
  """VegFru, 292 categories: train / val / test."""
  name = "vegfru"
  splits = ("train", "val", "test")
  layout = "vegfru_list/vegfru_{train,val,test}.txt beside veg200_images/ and fru92_images/"

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("vegfru", "VegFru"), "vegfru_list")

    def parse(fields):
      expect_fields(fields, "<image_path> <label>")
      label = to_int(fields[1], "the label")
      if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"expected a label in 0..{NUM_CLASSES - 1}, found {label}")
      if len(pathlib.PurePosixPath(fields[0]).parts) < 3:
        raise ValueError(f"expected an image path like 'veg200_images/<category>/<file>.jpg', found {fields[0]!r}")
      return fields[0], label

    class_names: dict[int, tuple[str, str]] = {}
    splits = {}
    for split in self.splits:
      path = require(root / "vegfru_list" / f"vegfru_{split}.txt", self.layout)
      table = read_table(path, problems, parse, split=split)
      examples = []
      for line, (path, label) in table.rows:
        category = pathlib.PurePosixPath(path).parts[-2]
        first = class_names.setdefault(label, (category, where(table.path, line)))
        if first[0] != category:
          problems.report(f"{where(table.path, line)}: label {label} is category {category!r} here but "
                          f"{first[0]!r} at {first[1]}: expected one category per label", split)
          continue
        examples.append(Example(image=root / path, filename=path, fields={"label": label},
                                origin=where(table.path, line)))
      splits[split] = examples
    metadata = {"class_names": [class_names.get(c, ("",))[0] for c in range(NUM_CLASSES)]}
    return Layout(splits=splits, metadata=metadata)
