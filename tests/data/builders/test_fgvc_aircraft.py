"""Tests for jaxret/data/builders/fgvc_aircraft.py."""
import numpy as np
from PIL import Image
import pytest

from jaxret.data import builders

VARIANTS = ["707-320", "A300B4", "Cessna 172", "F/A-18"]
SPLITS = {"train": [("0034309", "A300B4"), ("1514522", "Cessna 172")],
          "val": [("0062765", "707-320")],
          "test": [("2233611", "F/A-18"), ("0785344", "Cessna 172")]}


def write_aircraft(raw, banner=(255, 255, 255)):
  """The fgvc-aircraft-2013b layout; each image is flat colour above a 20-pixel banner."""
  data = raw / "fgvc-aircraft-2013b" / "data"
  (data / "images").mkdir(parents=True)
  (data / "variants.txt").write_text("\n".join(VARIANTS) + "\n")
  for split, rows in SPLITS.items():
    (data / f"images_variant_{split}.txt").write_text("".join(f"{i} {v}\n" for i, v in rows))
    for i, _ in rows:
      image = np.zeros((60, 50, 3), np.uint8)
      image[:40] = (30, 120, 200)
      image[40:] = banner
      Image.fromarray(image).save(data / "images" / f"{i}.jpg", quality=95)
  return data


def test_variant_labels_and_banner_is_cropped(tmp_path):
  write_aircraft(tmp_path / "raw")
  summary = builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")
  assert {s: v["images"] for s, v in summary["splits"].items()} == {"train": 2, "val": 1, "test": 2}
  assert summary["splits"]["test"] == {"images": 2, "classes": 2, "cameras": 0, "attributes": 0, "skipped": 0}
  test = builders.load_split("fgvc_aircraft", tmp_path / "tfds", "test")
  assert [int(test[i]["label"]) for i in range(2)] == [3, 2]  # line of variants.txt
  image = test[0]["image"]
  assert image.shape == (40, 50, 3)  # 60 - 20 banner rows
  assert np.abs(image[:36].astype(int) - (30, 120, 200)).max() <= 8
  assert "crop" not in test[0]
  trainval = builders.load_split("fgvc_aircraft", tmp_path / "tfds", "train+val")
  assert len(trainval) == 3 and [int(trainval[i]["label"]) for i in range(3)] == [1, 2, 0]
  assert trainval.metadata["class_names"] == VARIANTS


def test_unknown_variant_names_file_and_line(tmp_path):
  data = write_aircraft(tmp_path / "raw")
  with open(data / "images_variant_test.txt", "a") as f:
    f.write("0000001 Boeing 999\n")
  with pytest.raises(builders.BadExampleError, match=r"images_variant_test\.txt:3: expected a variant listed in"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")
