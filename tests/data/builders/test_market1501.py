"""Tests for jaxret/data/builders/market1501.py (and reid_folders.py, reid_attributes.py)."""
import numpy as np
import pytest
import scipy.io

from jaxret.data import builders
from jaxret.data.builders import market1501

ROOT = "Market-1501-v15.09.15"
FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c3s1_000551_01.jpg", "0007_c2s3_070952_01.jpg"],
    "query": ["0003_c1s1_001051_00.jpg", "0005_c6s2_000076_00.jpg"],
    "bounding_box_test": ["-1_c1s1_000401_03.jpg", "0000_c3s1_000100_02.jpg", "0003_c2s1_001201_01.jpg",
                          "0005_c5s1_002301_04.jpg"],
}


def attribute_rows(identities, seed):
  """Random identity attributes in the .mat encoding: age 1..4, others 1..2."""
  rng = np.random.default_rng(seed)
  return {i: [rng.integers(1, size + 1) for size in market1501.ATTRIBUTE_SIZES] for i in identities}


def write_attribute_mat(path, root_key, names, train, test):
  """A .mat file laid out as Lin et al.'s: train and test structs, one 1xN row per field, fields
  in a different order in test, and image_index a cell of identity strings."""
  def part(rows, order):
    ids = sorted(rows)
    fields = {name: np.array([[rows[i][names.index(name)] for i in ids]], np.float64) for name in order}
    fields["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object)
    return fields
  scipy.io.savemat(path, {root_key: {"train": part(train, names), "test": part(test, names[::-1])}})


@pytest.fixture
def market(tmp_path, jpeg):
  raw = tmp_path / "raw"
  for folder, names in FILES.items():
    for i, name in enumerate(names):
      jpeg(raw / ROOT / folder / name, index=len(name) + i, size=(64, 128))
  (raw / ROOT / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")
  train, test = attribute_rows([2, 7], seed=0), attribute_rows([3, 5], seed=1)
  write_attribute_mat(raw / "market_attribute.mat", "market_attribute", list(market1501.ATTRIBUTE_NAMES), train, test)
  return raw, {**train, **test}


def test_labels_cameras_frames_and_attributes_come_from_file_names_and_mat(market, tmp_path, same_colour):
  raw, table = market
  summary = builders.prepare("market1501", raw, tmp_path / "tfds")
  assert summary["dataset"] == "market1501" and summary["skipped"] == 0
  assert summary["splits"] == {
      "train": {"images": 3, "classes": 2, "cameras": 3, "attributes": 27, "skipped": 0},
      "query": {"images": 2, "classes": 2, "cameras": 2, "attributes": 27, "skipped": 0},
      "gallery": {"images": 4, "classes": 4, "cameras": 4, "attributes": 27, "skipped": 0}}

  gallery = builders.load_split("market1501", tmp_path / "tfds", "gallery")
  examples = [gallery[i] for i in range(len(gallery))]
  assert [e["filename"] for e in examples] == [f"bounding_box_test/{n}" for n in FILES["bounding_box_test"]]
  assert [int(e["label"]) for e in examples] == [-1, 0, 3, 5]  # junk and distractors kept
  assert [int(e["camera"]) for e in examples] == [0, 2, 1, 4]  # c1 -> 0
  assert [int(e["sequence"]) for e in examples] == [1, 1, 1, 1]
  assert [int(e["frame"]) for e in examples] == [401, 100, 1201, 2301]
  assert [int(e["index"]) for e in examples] == [0, 1, 2, 3]
  for e in examples[:2]:
    np.testing.assert_array_equal(e["attributes"], -1)  # identities -1 and 0 are not annotated
  for e in examples[2:]:
    np.testing.assert_array_equal(e["attributes"], np.array(table[int(e["label"])]) - 1)
  assert examples[2]["attributes"].dtype == np.int32 and examples[2]["label"].dtype == np.int32
  assert examples[2]["image"].shape == (128, 64, 3)
  same_colour(examples[2]["image"], len(FILES["bounding_box_test"][2]) + 2)

  train = builders.load_split("market1501", tmp_path / "tfds", "train")
  columns = train.columns()
  np.testing.assert_array_equal(columns["label"], [2, 2, 7])
  np.testing.assert_array_equal(columns["camera"], [0, 2, 1])
  np.testing.assert_array_equal(columns["attributes"][2], np.array(table[7]) - 1)
  assert train.metadata["attribute_names"] == list(market1501.ATTRIBUTE_NAMES)
  assert train.metadata["attribute_sizes"][0] == 4  # age


def test_without_the_attribute_file_attributes_are_unknown_and_a_warning_names_it(market, tmp_path, caplog):
  raw, _ = market
  (raw / "market_attribute.mat").unlink()
  summary = builders.prepare("market1501", raw, tmp_path / "tfds")
  assert "market_attribute.mat not found" in caplog.text
  assert summary["splits"]["train"]["images"] == 3
  columns = builders.load_split("market1501", tmp_path / "tfds", "train").columns()
  assert np.all(columns["attributes"] == -1)


def test_identity_without_attributes_is_an_error_naming_the_image(market, tmp_path, jpeg):
  raw, _ = market
  jpeg(raw / ROOT / "bounding_box_train" / "0009_c1s1_000001_01.jpg")
  with pytest.raises(builders.BadExampleError, match=r"0009_c1s1_000001_01\.jpg: identity 0009 has no attributes"):
    builders.prepare("market1501", raw, tmp_path / "tfds")


def test_bad_file_name_is_an_error_or_skipped(market, tmp_path, jpeg):
  raw, _ = market
  jpeg(raw / ROOT / "query" / "0003_c1_001051.jpg")
  with pytest.raises(builders.BadExampleError, match=r"query/0003_c1_001051\.jpg: expected a file name like"):
    builders.prepare("market1501", raw, tmp_path / "tfds")
  summary = builders.prepare("market1501", raw, tmp_path / "tfds", skip_bad_examples=True)
  assert summary["skipped"] == 1 and summary["splits"]["query"]["skipped"] == 1
  assert summary["splits"]["query"]["images"] == 2
  assert "0003_c1_001051.jpg" in summary["skipped_examples"][0]


def test_attribute_value_out_of_range_names_mat_field_and_identity(tmp_path):
  rows = attribute_rows([2], seed=0)
  rows[2][1] = 3  # backpack is 1 or 2
  write_attribute_mat(tmp_path / "a.mat", "market_attribute", list(market1501.ATTRIBUTE_NAMES), rows, rows)
  from jaxret.data.builders import reid_attributes
  with pytest.raises(builders.BadExampleError,
                     match=r"a\.mat: market_attribute\.train\.backpack: identity 0002 has value 3"):
    reid_attributes.load(tmp_path / "a.mat", "market_attribute", market1501.ATTRIBUTE_NAMES, market1501.ATTRIBUTE_SIZES)
