"""Tests for jaxret/data/builders/nabirds.py (and image_id_tables.py)."""
import numpy as np
import pytest

from jaxret.data import builders

IMAGES = [  # (uuid, class id, is_training_image)
    ("0000139e-21dc-4d0c-bfe1-4cae3c85c829", 817, 0),
    ("0000d9fc-4e02-4c06-a0af-a55cfb16b12b", 860, 1),
    ("00019306-9d83-4334-b255-a447742edce3", 900, 1),
    ("0001afd4-99a1-4a67-b940-d419413e23b3", 645, 0),
    ("000332b8-997c-4540-9647-2f0a8495aecf", 817, 1),
]
CLASSES = {0: "Birds", 645: "Common Loon", 817: "Oak Titmouse", 860: "Barn Owl", 900: "Bald Eagle"}


def write_nabirds(raw, jpeg):
  root = raw / "nabirds"
  root.mkdir(parents=True)
  paths = {u: f"{c:04d}/{u.replace('-', '')}.jpg" for u, c, _ in IMAGES}
  (root / "images.txt").write_text("".join(f"{u} {paths[u]}\n" for u, _, _ in IMAGES))
  (root / "image_class_labels.txt").write_text("".join(f"{u} {c}\n" for u, c, _ in IMAGES))
  (root / "train_test_split.txt").write_text("".join(f"{u} {t}\n" for u, _, t in IMAGES))
  (root / "classes.txt").write_text("".join(f"{c} {n}\n" for c, n in CLASSES.items()))
  for i, (u, _, _) in enumerate(IMAGES):
    jpeg(root / "images" / paths[u], index=i)
  return root


def test_leaf_classes_are_numbered_in_id_order(tmp_path, jpeg, same_colour):
  write_nabirds(tmp_path / "raw", jpeg)
  summary = builders.prepare("nabirds", tmp_path / "raw", tmp_path / "tfds")
  assert {s: (v["images"], v["classes"]) for s, v in summary["splits"].items()} == {"train": (3, 3), "test": (2, 2)}
  test = builders.load_split("nabirds", tmp_path / "tfds", "test")
  columns = test.columns()
  np.testing.assert_array_equal(columns["class_id"], [817, 645])
  np.testing.assert_array_equal(columns["label"], [1, 0])  # 645, 817, 860, 900 -> 0..3
  same_colour(test[1]["image"], 3)
  assert test.metadata["class_names"] == ["Common Loon", "Oak Titmouse", "Barn Owl", "Bald Eagle"]


def test_missing_and_bad_label_lines(tmp_path, jpeg):
  root = write_nabirds(tmp_path / "raw", jpeg)
  labels = root / "image_class_labels.txt"
  lines = labels.read_text().splitlines()
  labels.write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # image 3 has no class line
  with pytest.raises(builders.BadExampleError,
                     match=r"images\.txt:3: image id '00019306-.*' has no line in .*image_class_labels\.txt"):
    builders.prepare("nabirds", tmp_path / "raw", tmp_path / "tfds")
  labels.write_text("\n".join(lines[:1] + [lines[1].replace("860", "86O")] + lines[2:]) + "\n")
  with pytest.raises(builders.BadExampleError,
                     match=r"image_class_labels\.txt:2: expected the class id to be an integer, found '86O'"):
    builders.prepare("nabirds", tmp_path / "raw", tmp_path / "tfds")
  summary = builders.prepare("nabirds", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True)
  assert summary["skipped"] == 1  # the bad line; its image is not counted twice
  assert summary["splits"]["train"]["images"] == 2
