"""Tests for jaxret/data/builders/cub.py."""
import numpy as np
import pytest

from jaxret.data import builders
from jaxret.data.builders import cub

# The 28 attribute groups of CUB-200-2011's attributes.txt and their sizes (312 in all).
GROUPS = {
    "has_bill_shape": 9, "has_wing_color": 15, "has_upperparts_color": 15, "has_underparts_color": 15,
    "has_breast_pattern": 4, "has_back_color": 15, "has_tail_shape": 6, "has_upper_tail_color": 15,
    "has_head_pattern": 11, "has_breast_color": 15, "has_throat_color": 15, "has_eye_color": 14,
    "has_bill_length": 3, "has_forehead_color": 15, "has_under_tail_color": 15, "has_nape_color": 15,
    "has_belly_color": 15, "has_wing_shape": 5, "has_size": 5, "has_shape": 14, "has_back_pattern": 4,
    "has_tail_pattern": 4, "has_belly_pattern": 4, "has_primary_color": 15, "has_leg_color": 15,
    "has_bill_color": 15, "has_crown_color": 15, "has_wing_pattern": 4}
NAMES = [f"{group}::value_{k}" for group, size in GROUPS.items() for k in range(size)]
IMAGES = [  # (id, path, class id, is_training_image)
    (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg", 1, 0),
    (2, "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg", 1, 1),
    (3, "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg", 2, 0),
    (4, "003.Sooty_Albatross/Sooty_Albatross_0031_1066.jpg", 3, 1),
]
# (image id, attribute id) -> (is_present, certainty_id); every other pair is (0, 3).
MARKED = {
    (1, 3): (1, 3), (1, 5): (1, 4),  # has_bill_shape: the most certain present one -> index 4
    (2, 2): (1, 3), (2, 7): (1, 3),  # a tie -> the first, index 1
    (2, 10): (1, 1),                 # has_wing_color::value_0, present though "not visible"
    (4, 312): (1, 2),                # has_wing_pattern::value_3
}


def write_cub(raw, jpeg):
  root = raw / "CUB_200_2011"
  (root / "attributes").mkdir(parents=True)
  (raw / "attributes.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(NAMES, start=1)))
  (root / "images.txt").write_text("".join(f"{i} {p}\n" for i, p, _, _ in IMAGES))
  (root / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, _, c, _ in IMAGES))
  (root / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, _, t in IMAGES))
  (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n")
  (root / "bounding_boxes.txt").write_text("".join(f"{i} {10.0 * i} 27.0 {i}5.0 30.5\n" for i, _, _, _ in IMAGES))
  lines = []
  for image, _, _, _ in IMAGES:
    for attribute in range(1, 313):
      present, certain = MARKED.get((image, attribute), (0, 3))
      lines.append(f"{image} {attribute} {present} {certain} 1.234")
  lines[2 * 312 + 9] = "3 10 0 3 0 12.5"      # the file's quirk: 6 fields ...
  lines[2 * 312 + 10] = "3 11 0 3 0 0 9.1"    # ... or 7, the first four are right
  (root / "attributes" / "image_attribute_labels.txt").write_text("\n".join(lines) + "\n")
  for i, path, _, _ in IMAGES:
    jpeg(root / "images" / path, index=i)
  return root


def test_labels_binary_and_grouped_attributes_and_boxes(tmp_path, jpeg, same_colour):
  write_cub(tmp_path / "raw", jpeg)
  summary = builders.prepare("cub", tmp_path / "raw", tmp_path / "tfds")
  assert summary["splits"] == {"train": {"images": 2, "classes": 2, "cameras": 0, "attributes": 28, "skipped": 0},
                               "test": {"images": 2, "classes": 2, "cameras": 0, "attributes": 28, "skipped": 0}}
  test = builders.load_split("cub", tmp_path / "tfds", "test")
  first, third = test[0], test[1]
  assert (int(first["label"]), int(third["label"])) == (0, 1)  # class id - 1
  same_colour(third["image"], 3)
  expected_binary = np.zeros(312, np.int32)
  expected_binary[[2, 4]] = 1
  np.testing.assert_array_equal(first["binary_attributes"], expected_binary)
  assert first["attribute_certainty"][4] == 4 and first["attribute_certainty"][0] == 3
  assert first["attributes"].shape == (28,) and first["attributes"].dtype == np.int32
  assert first["attributes"][0] == 4 and (first["attributes"][1:] == -1).all()
  np.testing.assert_array_equal(third["attributes"], -1)
  np.testing.assert_allclose(first["bbox"], [27.0, 10.0, 57.5, 25.0])  # top, left, bottom, right

  train = builders.load_split("cub", tmp_path / "tfds", "train").columns()
  np.testing.assert_array_equal(train["attributes"][:, :2], [[1, 0], [-1, -1]])
  assert train["attributes"][1, 27] == 3
  assert test.metadata["attribute_names"] == list(GROUPS)
  assert test.metadata["attribute_sizes"] == list(GROUPS.values())
  assert test.metadata["binary_attribute_names"] == NAMES
  assert test.metadata["class_names"][2] == "003.Sooty_Albatross"


def test_categorical_is_most_certain_present_value_or_minus_one():
  present = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]])
  certainty = np.array([[2, 4, 3, 3], [4, 4, 4, 4], [1, 1, 4, 4]])
  np.testing.assert_array_equal(cub.categorical(present, certainty, [[0, 1], [2, 3]]),
                                [[0, 0], [-1, -1], [0, -1]])


def test_missing_attribute_lines_and_bad_lines_name_file_and_line(tmp_path, jpeg):
  root = write_cub(tmp_path / "raw", jpeg)
  path = root / "attributes" / "image_attribute_labels.txt"
  lines = path.read_text().splitlines()
  path.write_text("\n".join(lines[:-1]) + "\n")  # image 4 loses its last attribute line
  with pytest.raises(builders.BadExampleError, match=r"images\.txt:4: image id 4 has 311 of 312 attribute lines"):
    builders.prepare("cub", tmp_path / "raw", tmp_path / "tfds")
  lines[5] = "1 6 yes 3 1.0"
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(builders.BadExampleError,
                     match=r"image_attribute_labels\.txt:6: expected is_present to be an integer, found 'yes'"):
    builders.prepare("cub", tmp_path / "raw", tmp_path / "tfds")
  summary = builders.prepare("cub", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True)
  assert summary["skipped"] == 1 and summary["splits"]["test"]["images"] == 1
