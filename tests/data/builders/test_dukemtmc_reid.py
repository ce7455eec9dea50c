"""Tests for jaxret/data/builders/dukemtmc_reid.py."""
import numpy as np
import scipy.io

from jaxret.data import builders
from jaxret.data.builders import dukemtmc_reid

FILES = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0004_c1_f0044938.jpg"],
    "query": ["0005_c2_f0046985.jpg"],
    "bounding_box_test": ["0005_c5_f0052001.jpg", "0005_c8_f0075103.jpg", "0011_c3_f0083011.jpg"],
}


def test_identities_cameras_frames_and_23_attributes(tmp_path, jpeg):
  raw = tmp_path / "raw"
  for folder, names in FILES.items():
    for i, name in enumerate(names):
      jpeg(raw / "DukeMTMC-reID" / folder / name, index=i)
  names = list(dukemtmc_reid.ATTRIBUTE_NAMES)
  rng = np.random.default_rng(0)
  values = {i: rng.integers(1, 3, len(names)) for i in (1, 4, 5, 11)}

  def part(ids):
    fields = {n: np.array([[values[i][k] for i in ids]], float) for k, n in enumerate(names)}
    fields["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object)
    return fields
  (raw / "DukeMTMC-attribute").mkdir()
  scipy.io.savemat(raw / "DukeMTMC-attribute" / "duke_attribute.mat",
                   {"duke_attribute": {"train": part([1, 4]), "test": part([5, 11])}})

  summary = builders.prepare("dukemtmc_reid", raw, tmp_path / "tfds")
  assert summary["splits"] == {
      "train": {"images": 3, "classes": 2, "cameras": 3, "attributes": 23, "skipped": 0},
      "query": {"images": 1, "classes": 1, "cameras": 1, "attributes": 23, "skipped": 0},
      "gallery": {"images": 3, "classes": 2, "cameras": 3, "attributes": 23, "skipped": 0}}
  gallery = builders.load_split("dukemtmc_reid", tmp_path / "tfds", "gallery")
  e = gallery[1]
  assert (int(e["label"]), int(e["camera"]), int(e["frame"])) == (5, 7, 75103)
  np.testing.assert_array_equal(e["attributes"], values[5] - 1)
  columns = builders.load_split("dukemtmc_reid", tmp_path / "tfds", "train").columns()
  np.testing.assert_array_equal(columns["label"], [1, 1, 4])
  np.testing.assert_array_equal(columns["camera"], [1, 4, 0])
