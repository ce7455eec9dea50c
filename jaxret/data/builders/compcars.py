"""CompCars web-nature data (Yang et al., CVPR 2015), car model classification with attributes.

manual_dir layout (the unpacked `data/` folder of the release)::

  data/image/<make_id>/<model_id>/<released_year>/<name>.jpg
  data/misc/attributes.txt                   header 'model_id maximum_speed displacement door_number
                                             seat_number type', then one line per model
  data/train_test_split/classification/train.txt   '<make_id>/<model_id>/<year>/<name>.jpg' (16,016)
  data/train_test_split/classification/test.txt    (14,939)

Splits `train` and `test` of the classification task (431 models). `label` numbers the model
ids of both lists in ascending order (0..430); `model_id`, `make_id` and `year` (-1 when the
folder is not a number) keep the published numbers. The five attributes (maximum speed in
km/h, displacement in L, doors, seats, type 1..12 as in misc/car_type.mat) are stored twice:
`attribute_values` float32 [5], the published values (0 = unknown), and `attributes` int32 [5],
each value's rank among the distinct non-zero values of that attribute over all models of
attributes.txt (-1 = unknown); metadata.json `attribute_values[a][code]` maps codes back.
(A3M quotes 36,456 / 15,627 images for this task: not the published split files' counts.)
"""
import pathlib

import numpy as np

from jaxret.data.builders.annotation_table import expect_fields, read_table, require, to_float, to_int
from jaxret.data.builders.builder import Builder, Example, Layout, float32, int32
from jaxret.data.builders.problems import Problems, where

ATTRIBUTE_NAMES = ("maximum_speed", "displacement", "door_number", "seat_number", "type")
HEADER = ("model_id",) + ATTRIBUTE_NAMES


class CompCars(Builder):
  """CompCars web-nature classification, 431 models with five attributes: train / test."""
  name = "compcars"
  splits = ("train", "test")
  EXTRA_FEATURES = {"model_id": int32(), "make_id": int32(), "year": int32(),
                    "attributes": int32([len(ATTRIBUTE_NAMES)]), "attribute_values": float32([len(ATTRIBUTE_NAMES)])}
  layout = "data/ with image/, misc/attributes.txt and train_test_split/classification/{train,test}.txt"

  def _attributes(self, path: pathlib.Path, problems: Problems) -> dict[int, np.ndarray]:
    with open(require(path, self.layout), "rb") as f:
      header = tuple(f.readline().decode("utf-8", "replace").split())
    if header != HEADER:
      raise ValueError(f"{where(path, 1)}: expected the header {' '.join(HEADER)!r}, found {' '.join(header)!r}")

    def parse(fields):
      expect_fields(fields, " ".join(f"<{h}>" for h in HEADER))
      return to_int(fields[0], "model_id"), np.array([to_float(v, n) for v, n in zip(fields[1:], ATTRIBUTE_NAMES)],
                                                     np.float32)

    table = read_table(path, problems, parse, skip_lines=1)
    return dict(value for _, value in table.rows)

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("data", "CompCars/data", "data/data"), "train_test_split")
    values = self._attributes(root / "misc" / "attributes.txt", problems)
    table = np.stack(list(values.values())) if values else np.zeros((0, len(ATTRIBUTE_NAMES)), np.float32)
    distinct = [np.unique(column[column != 0]) for column in table.T]

    def parse(fields):
      expect_fields(fields, "<make_id>/<model_id>/<year>/<name>.jpg")
      parts = fields[0].split("/")
      if len(parts) != 4:
        raise ValueError(f"expected a path '<make_id>/<model_id>/<year>/<name>.jpg', found {fields[0]!r}")
      make, model = to_int(parts[0], "make_id"), to_int(parts[1], "model_id")
      if model not in values:
        raise ValueError(f"expected a model_id listed in {root / 'misc' / 'attributes.txt'}, found {model}")
      return fields[0], make, model, int(parts[2]) if parts[2].isdigit() else -1

    tables = {split: read_table(require(root / "train_test_split" / "classification" / f"{split}.txt", self.layout),
                                problems, parse, split=split) for split in self.splits}
    models = sorted({model for t in tables.values() for _, (_, _, model, _) in t.rows})
    label_of = {m: i for i, m in enumerate(models)}
    splits = {}
    for split, t in tables.items():
      splits[split] = []
      for line, (path, make, model, year) in t.rows:
        raw = values[model]
        codes = np.array([np.searchsorted(d, v) if v != 0 else -1 for d, v in zip(distinct, raw)], np.int32)
        splits[split].append(Example(
            image=root / "image" / path, filename=f"image/{path}", origin=where(t.path, line),
            fields={"label": label_of[model], "model_id": model, "make_id": make, "year": year,
                    "attributes": codes, "attribute_values": raw}))
    metadata = {"attribute_names": list(ATTRIBUTE_NAMES), "attribute_sizes": [len(d) for d in distinct],
                "attribute_values": [d.tolist() for d in distinct], "model_ids": models}
    return Layout(splits=splits, metadata=metadata)
