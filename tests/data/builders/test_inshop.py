"""Tests for jaxret/data/builders/inshop.py."""
import numpy as np
import pytest

from jaxret.data import builders

ROWS = [
    ("img/WOMEN/Dresses/id_00000002/02_1_front.jpg", "id_00000002", "train"),
    ("img/WOMEN/Dresses/id_00000002/02_2_side.jpg", "id_00000002", "train"),
    ("img/MEN/Denim/id_00000080/01_1_front.jpg", "id_00000080", "train"),
    ("img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg", "id_00000001", "query"),
    ("img/WOMEN/Blouses_Shirts/id_00000001/02_3_back.jpg", "id_00000001", "gallery"),
    ("img/MEN/Tees_Tanks/id_00007982/01_7_additional.jpg", "id_00007982", "gallery"),
]


def write_inshop(raw, jpeg, count=len(ROWS)):
  root = raw / "In-shop Clothes Retrieval Benchmark"
  (root / "Eval").mkdir(parents=True)
  lines = [str(count), "image_name item_id evaluation_status"]
  lines += [f"{image:<70}{item:<16}{status}" for image, item, status in ROWS]  # padded as published
  (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
  for i, (image, _, _) in enumerate(ROWS):
    jpeg(root / image, index=i)
  return root


def test_partition_splits_and_item_labels(tmp_path, jpeg, same_colour):
  write_inshop(tmp_path / "raw", jpeg)
  summary = builders.prepare("inshop", tmp_path / "raw", tmp_path / "tfds")
  assert {s: (v["images"], v["classes"]) for s, v in summary["splits"].items()} == {
      "train": (3, 2), "query": (1, 1), "gallery": (2, 2)}
  gallery = builders.load_split("inshop", tmp_path / "tfds", "gallery")
  columns = gallery.columns()
  np.testing.assert_array_equal(columns["item"], [1, 7982])
  np.testing.assert_array_equal(columns["label"], [0, 3])  # items 1, 2, 80, 7982 -> 0..3
  assert gallery[1]["filename"] == ROWS[5][0]
  same_colour(gallery[1]["image"], 5)
  train = builders.load_split("inshop", tmp_path / "tfds", "train").columns()
  np.testing.assert_array_equal(train["label"], [1, 1, 2])


def test_wrong_count_line_and_status_name_file_and_line(tmp_path, jpeg):
  root = write_inshop(tmp_path / "raw", jpeg, count=99)
  with pytest.raises(builders.BadExampleError, match=r"list_eval_partition\.txt:1: expected the number of images"):
    builders.prepare("inshop", tmp_path / "raw", tmp_path / "tfds")
  partition = root / "Eval" / "list_eval_partition.txt"
  text = partition.read_text().replace("99", "6")
  partition.write_text(text.replace(f"{'id_00000080':<16}train", f"{'id_00000080':<16}valid"))
  with pytest.raises(builders.BadExampleError, match=r"list_eval_partition\.txt:5: expected evaluation_status in"):
    builders.prepare("inshop", tmp_path / "raw", tmp_path / "tfds")
