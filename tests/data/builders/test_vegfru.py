"""Tests for jaxret/data/builders/vegfru.py."""
import numpy as np
import pytest

from jaxret.data import builders

LISTS = {
    "train": [("veg200_images/achyranthes/v_01_01_0001.jpg", 0), ("fru92_images/almond/f_01_01_0001.jpg", 200)],
    "val": [("veg200_images/achyranthes/v_01_01_0100.jpg", 0)],
    "test": [("veg200_images/adenophora/v_01_02_0300.jpg", 1), ("fru92_images/almond/f_01_01_0500.jpg", 200),
             ("fru92_images/wax_apple/f_08_05_0007.jpg", 291)],
}


def write_vegfru(raw, jpeg):
  (raw / "vegfru_list").mkdir(parents=True)
  for split, rows in LISTS.items():
    (raw / "vegfru_list" / f"vegfru_{split}.txt").write_text("".join(f"{p} {l}\n" for p, l in rows))
    for i, (path, _) in enumerate(rows):
      jpeg(raw / path, index=i)


def test_list_labels_and_category_names(tmp_path, jpeg):
  write_vegfru(tmp_path / "raw", jpeg)
  summary = builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  assert {s: (v["images"], v["classes"]) for s, v in summary["splits"].items()} == {
      "train": (2, 2), "val": (1, 1), "test": (3, 3)}
  test = builders.load_split("vegfru", tmp_path / "tfds", "test")
  np.testing.assert_array_equal(test.columns()["label"], [1, 200, 291])
  assert test[2]["filename"] == "fru92_images/wax_apple/f_08_05_0007.jpg"
  names = test.metadata["class_names"]
  assert (names[0], names[1], names[200], names[291]) == ("achyranthes", "adenophora", "almond", "wax_apple")


def test_label_out_of_range_and_category_mismatch(tmp_path, jpeg):
  write_vegfru(tmp_path / "raw", jpeg)
  path = tmp_path / "raw" / "vegfru_list" / "vegfru_val.txt"
  path.write_text("veg200_images/achyranthes/v_01_01_0100.jpg 292\n")
  with pytest.raises(builders.BadExampleError, match=r"vegfru_val\.txt:1: expected a label in 0\.\.291, found 292"):
    builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
  path.write_text("veg200_images/achyranthes/v_01_01_0100.jpg 0\nveg200_images/achyranthes/v_01_01_0100.jpg 1\n")
  with pytest.raises(builders.BadExampleError, match=r"vegfru_test\.txt:1: label 1 is category 'adenophora' "
                                                    r"here but 'achyranthes' at .*vegfru_val\.txt:2"):
    builders.prepare("vegfru", tmp_path / "raw", tmp_path / "tfds")
