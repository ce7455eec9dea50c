"""CUB-200-2011 (Wah et al., 2011) with its attribute annotations: 11,788 images, 200 species.

manual_dir layout (CUB_200_2011.tgz)::

  attributes.txt                                  '<attribute_id> <group>::<value>' (312 lines);
                                                  also found in CUB_200_2011/ or CUB_200_2011/attributes/
  CUB_200_2011/images.txt                         '<image_id> <path under images/>'
  CUB_200_2011/image_class_labels.txt             '<image_id> <class_id>' (1..200)
  CUB_200_2011/train_test_split.txt               '<image_id> <is_training_image>'
  CUB_200_2011/classes.txt                        '<class_id> <class name>'
  CUB_200_2011/bounding_boxes.txt                 '<image_id> <x> <y> <width> <height>'
  CUB_200_2011/attributes/image_attribute_labels.txt
                                                  '<image_id> <attribute_id> <is_present> <certainty_id> <time>'
  CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg

Splits `train` (5,994) and `test` (5,794). Stored fields:

- `label`: class id - 1 (0..199);
- `binary_attributes` int32 [312]: `is_present` of each attribute of attributes.txt;
- `attribute_certainty` int32 [312]: `certainty_id` (1 not visible, 2 guessing, 3 probably,
  4 definitely);
- `attributes` int32 [28]: the 312 attributes grouped by the name before `::`
  (`has_bill_shape`, ... in order of first appearance) into 28 categorical attributes; the
  value is the index, within its group, of the present attribute with the highest certainty
  (ties: the first), or -1 when no attribute of the group is present. (A3M's public code
  numbers the same values from 1 with 0 for "none": that is `attributes + 1`.);
- `bbox` float32 [4]: the bird's box (top, left, bottom, right) in pixels (not applied).

Known quirk of image_attribute_labels.txt: a few lines hold 6 or 7 fields, with extra tokens
between `certainty_id` and `time`; the first four fields are right and are the ones read.
metadata.json: `class_names`, `attribute_names` (28 groups), `attribute_sizes`,
`attribute_values` (value names per group), `binary_attribute_names` (312).
"""
import pathlib

import numpy as np

from jaxret.data.builders import image_id_tables
from jaxret.data.builders.annotation_table import expect_fields, read_table, require, to_float, to_int
from jaxret.data.builders.builder import Builder, Example, Layout, float32, int32
from jaxret.data.builders.problems import Problems

NUM_BINARY = 312
NUM_GROUPS = 28


def group_attributes(names: list[str]) -> tuple[list[str], list[list[int]], list[list[str]]]:
  """Groups `group::value` names by group, in order of first appearance.

  Returns:
    (group names, member attribute indices per group, value names per group).
  """
  groups: dict[str, list[int]] = {}
  for i, name in enumerate(names):
    groups.setdefault(name.split("::")[0], []).append(i)
  values = [[names[i].split("::", 1)[-1] for i in members] for members in groups.values()]
  return list(groups), list(groups.values()), values


def categorical(present: np.ndarray, certainty: np.ndarray, members: list[list[int]]) -> np.ndarray:
  """Per group, the most certain present member (first on ties), or -1 when none is present.

  Args:
    present: int `[N, A]` in {0, 1}.
    certainty: int `[N, A]` in 1..4.
    members: attribute indices of each of the G groups.
  Returns:
    int32 `[N, G]`.
  """
  out = np.empty((present.shape[0], len(members)), np.int32)
  for g, m in enumerate(members):
    score = np.where(present[:, m] == 1, certainty[:, m], 0)
    out[:, g] = np.where(score.max(axis=1) > 0, score.argmax(axis=1), -1)
  return out


class CUB(Builder):
  """CUB-200-2011 with 312 binary and 28 categorical attributes and boxes: train / test."""
  name = "cub"
  splits = ("train", "test")
  EXTRA_FEATURES = {"attributes": int32([NUM_GROUPS]), "binary_attributes": int32([NUM_BINARY]),
                    "attribute_certainty": int32([NUM_BINARY]), "bbox": float32([4])}
  layout = ("CUB_200_2011/ with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, "
            "bounding_boxes.txt, attributes/image_attribute_labels.txt and images/, and attributes.txt beside it")

  def _attribute_names(self, manual_dir: pathlib.Path, root: pathlib.Path, problems: Problems) -> list[str]:
    candidates = [manual_dir / "attributes.txt", root.parent / "attributes.txt", root / "attributes.txt",
                  root / "attributes" / "attributes.txt"]
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
      raise FileNotFoundError(f"attributes.txt not found: looked for {', '.join(map(str, candidates))}; "
                              f"expected {self.layout}")

    def parse(fields):
      expect_fields(fields, "<attribute_id> <group::value>")
      if "::" not in fields[1]:
        raise ValueError(f"expected an attribute name 'group::value', found {fields[1]!r}")
      return to_int(fields[0], "the attribute id"), fields[1]

    table = read_table(path, problems, parse, maxsplit=1)
    names = [name for _, (_, name) in table.rows]
    ids = [i for _, (i, _) in table.rows]
    if ids != list(range(1, NUM_BINARY + 1)) or len(group_attributes(names)[0]) != NUM_GROUPS:
      raise ValueError(f"{path}: expected attribute ids 1..{NUM_BINARY} in order, in {NUM_GROUPS} groups; "
                       f"found {len(ids)} attributes in {len(group_attributes(names)[0])} groups")
    return names

  def _image_attributes(self, path: pathlib.Path, rows: dict[str, int], problems: Problems
                        ) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """(is_present, certainty) `[len(rows), 312]`, -1 where no line gave a value; and bad ids."""
    present = np.full((len(rows), NUM_BINARY), -1, np.int8)
    certainty = np.full((len(rows), NUM_BINARY), -1, np.int8)

    def parse(fields):
      if not 5 <= len(fields) <= 7:
        raise ValueError("expected 5 fields '<image_id> <attribute_id> <is_present> <certainty_id> <time>' "
                         f"(6 or 7 on the file's known quirky lines), found {len(fields)}")
      attribute = to_int(fields[1], "the attribute id")
      is_present = to_int(fields[2], "is_present")
      certain = to_int(fields[3], "certainty_id")
      if not 1 <= attribute <= NUM_BINARY or is_present not in (0, 1) or not 1 <= certain <= 4:
        raise ValueError(f"expected attribute_id in 1..{NUM_BINARY}, is_present 0 or 1, certainty_id in 1..4")
      return fields[0], attribute - 1, is_present, certain

    table = read_table(require(path, self.layout), problems, parse)
    for _, (image_id, attribute, is_present, certain) in table.rows:
      row = rows.get(image_id)
      if row is not None:
        present[row, attribute] = is_present
        certainty[row, attribute] = certain
    return present, certainty, table.bad_keys

  def _boxes(self, root: pathlib.Path, problems: Problems) -> tuple[dict[str, np.ndarray], set[str]]:
    def parse(fields):
      expect_fields(fields, "<image_id> <x> <y> <width> <height>")
      x, y, w, h = (to_float(v, n) for v, n in zip(fields[1:], ("x", "y", "width", "height")))
      return fields[0], np.array([y, x, y + h, x + w], np.float32)
    table = read_table(require(root / "bounding_boxes.txt", self.layout), problems, parse)
    return dict(value for _, value in table.rows), table.bad_keys

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("CUB_200_2011",), "image_class_labels.txt")
    names = self._attribute_names(manual_dir, root, problems)
    groups, members, values = group_attributes(names)
    classes = image_id_tables.read_classes(root / "classes.txt", problems, self.layout)
    entries = image_id_tables.read_images(root, problems, self.layout, classes)
    boxes, bad_boxes = self._boxes(root, problems)
    rows = {e.image_id: i for i, e in enumerate(entries)}
    attribute_path = root / "attributes" / "image_attribute_labels.txt"
    present, certainty, bad_attributes = self._image_attributes(attribute_path, rows, problems)
    grouped = categorical(present, certainty, members)
    splits = {"train": [], "test": []}
    for i, e in enumerate(entries):
      if e.image_id in bad_attributes or e.image_id in bad_boxes:
        continue  # reported with its bad line
      if e.image_id not in boxes:
        problems.report(f"{e.origin}: image id {e.image_id} has no line in {root / 'bounding_boxes.txt'}: "
                        f"expected one box per image")
        continue
      missing = int((present[i] < 0).sum())
      if missing:
        problems.report(f"{e.origin}: image id {e.image_id} has {NUM_BINARY - missing} of {NUM_BINARY} "
                        f"attribute lines in {attribute_path}: expected one per attribute")
        continue
      splits["train" if e.is_train else "test"].append(Example(
          image=root / "images" / e.path, filename=f"images/{e.path}", origin=e.origin, fields={
              "label": e.class_id - 1, "attributes": grouped[i],
              "binary_attributes": present[i].astype(np.int32),
              "attribute_certainty": certainty[i].astype(np.int32), "bbox": boxes[e.image_id]}))
    metadata = {"class_names": [classes.get(c, "") for c in range(1, max(classes, default=0) + 1)],
                "attribute_names": groups, "attribute_sizes": [len(m) for m in members],
                "attribute_values": values, "binary_attribute_names": names}
    return Layout(splits=splits, metadata=metadata)
