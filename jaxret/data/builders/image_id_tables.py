"""The id-keyed annotation tables of CUB-200-2011 and NABirds.

Both datasets list images in `images.txt` (`<image_id> <relative path>`) and key every other
table by image id: `image_class_labels.txt` (`<image_id> <class_id>`), `train_test_split.txt`
(`<image_id> <is_training_image>`), `classes.txt` (`<class_id> <class name>`).
"""
from collections.abc import Collection
import dataclasses
import pathlib

from jaxret.data.builders.annotation_table import Table, expect_fields, read_table, require, to_int
from jaxret.data.builders.problems import Problems, where


@dataclasses.dataclass(frozen=True)
class ImageEntry:
  """One image of `images.txt` with its class and split."""
  image_id: str
  path: str
  class_id: int
  is_train: bool
  origin: str


def keyed(table: Table, problems: Problems) -> dict[str, tuple[int, object]]:
  """`{key: (line, value)}` from a table of `(key, value)` rows; a repeated key is a bad line."""
  out = {}
  for line, (key, value) in table.rows:
    if key in out:
      problems.report(f"{where(table.path, line)}: expected each id once, {key!r} is already at line {out[key][0]}")
      table.bad_keys.add(key)
      continue
    out[key] = (line, value)
  return out


def read_classes(path: pathlib.Path, problems: Problems, layout: str) -> dict[int, str]:
  """`classes.txt`: class id -> name (names may hold spaces)."""
  def parse(fields):
    expect_fields(fields, "<class_id> <class_name>")
    return to_int(fields[0], "the class id"), fields[1]
  return {class_id: name for _, (class_id, name) in read_table(require(path, layout), problems, parse, maxsplit=1).rows}


def read_images(root: pathlib.Path, problems: Problems, layout: str, class_ids: Collection[int]) -> list[ImageEntry]:
  """Every image of `images.txt`, in its order, with class and split from the other tables.

  An image whose class or split line is missing or bad, or whose class is not in `class_ids`
  (those of classes.txt), is reported (once) and left out.
  """
  def pair(form, value_name, check=None):
    def parse(fields):
      expect_fields(fields, form)
      value = to_int(fields[1], value_name)
      if check is not None:
        check(value)
      return fields[0], value
    return parse

  def is_known_class(value):
    if value not in class_ids:
      raise ValueError(f"expected a class id listed in {root / 'classes.txt'}, found {value}")

  def is_zero_or_one(value):
    if value not in (0, 1):
      raise ValueError(f"expected is_training_image 0 or 1, found {value}")

  def path_row(fields):
    expect_fields(fields, "<image_id> <image_name>")
    return fields[0], fields[1]

  images = read_table(require(root / "images.txt", layout), problems, path_row, maxsplit=1)
  labels = read_table(require(root / "image_class_labels.txt", layout), problems,
                      pair("<image_id> <class_id>", "the class id", is_known_class))
  split = read_table(require(root / "train_test_split.txt", layout), problems,
                     pair("<image_id> <is_training_image>", "is_training_image", is_zero_or_one))
  label_of, train_of = keyed(labels, problems), keyed(split, problems)
  entries = []
  for image_id, (line, path) in keyed(images, problems).items():
    missing = [t for t, d in ((labels, label_of), (split, train_of)) if image_id not in d]
    if any(image_id in t.bad_keys for t in missing):
      continue  # its bad line was reported already
    if missing:
      problems.report(f"{where(images.path, line)}: image id {image_id!r} has no line in "
                      f"{' or '.join(str(t.path) for t in missing)}: expected every image listed there")
      continue
    entries.append(ImageEntry(image_id=image_id, path=path, class_id=label_of[image_id][1],
                              is_train=bool(train_of[image_id][1]), origin=where(images.path, line)))
  return entries
