"""Tests for jaxret/data/builders/compcars.py."""
import numpy as np
import pytest

from jaxret.data import builders

ATTRIBUTES = """model_id maximum_speed displacement door_number seat_number type
1 235 1.8 5 5 4
2 0 0 4 5 3
3 180 2 4 7 1
4 250 3.0 2 4 9
"""
TRAIN = ["78/1/2014/3ac218c0c6c378.jpg", "78/1/2012/0a1b2c3d4e5f60.jpg", "14/3/2010/aa12bb34cc56dd.jpg"]
TEST = ["78/1/2014/ffeeddccbbaa99.jpg", "121/4/unknown/0123456789abcd.jpg"]


def write_compcars(raw, jpeg):
  data = raw / "data"
  (data / "misc").mkdir(parents=True)
  (data / "misc" / "attributes.txt").write_text(ATTRIBUTES)
  split = data / "train_test_split" / "classification"
  split.mkdir(parents=True)
  (split / "train.txt").write_text("\n".join(TRAIN) + "\n")
  (split / "test.txt").write_text("\n".join(TEST) + "\n")
  for i, path in enumerate(TRAIN + TEST):
    jpeg(data / "image" / path, index=i)
  return data


def test_models_and_five_attributes(tmp_path, jpeg):
  write_compcars(tmp_path / "raw", jpeg)
  summary = builders.prepare("compcars", tmp_path / "raw", tmp_path / "tfds")
  assert summary["splits"]["train"] == {"images": 3, "classes": 2, "cameras": 0, "attributes": 5, "skipped": 0}
  test = builders.load_split("compcars", tmp_path / "tfds", "test")
  columns = test.columns()
  np.testing.assert_array_equal(columns["model_id"], [1, 4])
  np.testing.assert_array_equal(columns["label"], [0, 2])  # models 1, 3, 4 -> 0..2
  np.testing.assert_array_equal(columns["make_id"], [78, 121])
  np.testing.assert_array_equal(columns["year"], [2014, -1])
  np.testing.assert_allclose(columns["attribute_values"], [[235, 1.8, 5, 5, 4], [250, 3.0, 2, 4, 9]], rtol=1e-6)
  # Codes: rank among the distinct non-zero values of all models (speed 180 < 235 < 250, ...).
  np.testing.assert_array_equal(columns["attributes"], [[1, 0, 2, 1, 2], [2, 2, 0, 0, 3]])
  assert test.metadata["attribute_values"][1] == pytest.approx([1.8, 2.0, 3.0])
  assert test.metadata["attribute_sizes"] == [3, 3, 3, 3, 4]
  train = builders.load_split("compcars", tmp_path / "tfds", "train").columns()
  np.testing.assert_array_equal(train["attributes"][2], [0, 1, 1, 2, 0])


def test_unknown_attribute_is_minus_one_and_unknown_model_is_reported(tmp_path, jpeg):
  data = write_compcars(tmp_path / "raw", jpeg)
  (data / "train_test_split" / "classification" / "test.txt").write_text("78/2/2011/abcdef.jpg\n77/99/2011/x.jpg\n")
  jpeg(data / "image" / "78/2/2011/abcdef.jpg")
  with pytest.raises(builders.BadExampleError, match=r"classification/test\.txt:2: expected a model_id listed in"):
    builders.prepare("compcars", tmp_path / "raw", tmp_path / "tfds")
  summary = builders.prepare("compcars", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True)
  assert summary["skipped"] == 1 and summary["splits"]["test"]["skipped"] == 1
  test = builders.load_split("compcars", tmp_path / "tfds", "test")
  np.testing.assert_array_equal(test[0]["attributes"], [-1, -1, 1, 1, 1])  # speed, displacement unknown
