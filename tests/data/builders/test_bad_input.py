"""Bad input for jaxret/data/builders: corrupt images, bad annotation lines, wrong folders.

Every error names the file (and the annotation line); `skip_bad_examples=True` skips and counts.
"""
import json

import pytest

from jaxret.data import builders
from jaxret.data.builders import preparation

SPLITS = {"train": ["1000001", "1000002", "1000003"], "val": ["1000004"], "test": ["1000005", "1000006"]}


def write_aircraft(raw, jpeg):
  """A small FGVC-Aircraft layout: two variants, every image 40x60 (a 20-pixel banner)."""
  data = raw / "fgvc-aircraft-2013b" / "data"
  data.mkdir(parents=True)
  (data / "variants.txt").write_text("707-320\nA300B4\n")
  for split, ids in SPLITS.items():
    (data / f"images_variant_{split}.txt").write_text("".join(f"{i} {('707-320', 'A300B4')[n % 2]}\n"
                                                              for n, i in enumerate(ids)))
    for n, i in enumerate(ids):
      jpeg(data / "images" / f"{i}.jpg", index=n, size=(40, 60))
  return data


@pytest.fixture
def aircraft(tmp_path, jpeg):
  return write_aircraft(tmp_path / "raw", jpeg)


def test_corrupt_image_names_the_file_and_the_line_that_lists_it(aircraft, tmp_path):
  (aircraft / "images" / "1000002.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
  with pytest.raises(builders.BadExampleError, match=r"images/1000002\.jpg: expected a readable image, PIL says .* "
                     r"\(listed at .*images_variant_train\.txt:2\)"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")


def test_truncated_image_is_caught_by_the_full_decode(aircraft, tmp_path):
  path = aircraft / "images" / "1000005.jpg"
  path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  with pytest.raises(builders.BadExampleError, match=r"images/1000005\.jpg: expected a readable image, .*truncated"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")


def test_missing_image_names_the_file(aircraft, tmp_path):
  (aircraft / "images" / "1000004.jpg").unlink()
  with pytest.raises(builders.BadExampleError, match=r"images/1000004\.jpg: expected an image file, cannot read it"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")


def test_bad_annotation_line_names_file_and_line_number(aircraft, tmp_path):
  with open(aircraft / "images_variant_test.txt", "a") as f:
    f.write("\n10000x7 707-320\n")  # blank lines are fine; line 4 is not
  with pytest.raises(builders.BadExampleError, match=r"images_variant_test\.txt:4: expected a numeric image id, "
                     r"found '10000x7'; the line reads '10000x7 707-320'"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")


def test_skip_switch_skips_and_counts_every_bad_example(aircraft, tmp_path):
  (aircraft / "images" / "1000002.jpg").write_bytes(b"garbage")
  truncated = aircraft / "images" / "1000005.jpg"
  truncated.write_bytes(truncated.read_bytes()[:200])
  with open(aircraft / "images_variant_val.txt", "a") as f:
    f.write("1000007\n")
  summary = builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True)
  assert summary["skipped"] == 3
  assert {s: (v["images"], v["skipped"]) for s, v in summary["splits"].items()} == {
      "train": (2, 1), "val": (1, 1), "test": (1, 1)}
  messages = summary["skipped_examples"]
  assert any("images_variant_val.txt:2" in m for m in messages)
  assert any("1000002.jpg" in m for m in messages) and any("1000005.jpg" in m for m in messages)
  train = builders.load_split("fgvc_aircraft", tmp_path / "tfds", "train")
  assert [train[i]["filename"] for i in range(len(train))] == ["images/1000001.jpg", "images/1000003.jpg"]
  assert train.metadata["skipped_examples"] == messages  # recorded with the prepared data
  stored = json.loads((tmp_path / "tfds" / "fgvc_aircraft" / "1.0.0" / "metadata.json").read_text())
  assert len(stored["skipped_examples"]) == 3


def test_split_with_no_usable_example_is_an_error_even_when_skipping(aircraft, tmp_path):
  (aircraft / "images" / "1000004.jpg").write_bytes(b"garbage")
  with pytest.raises(ValueError, match=r"split 'val' has no usable examples .* \(1 skipped\)"):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True)


def test_failed_prepare_leaves_the_previous_build_and_no_partial_files(aircraft, tmp_path):
  builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")
  (aircraft / "images" / "1000006.jpg").write_bytes(b"garbage")
  with pytest.raises(builders.BadExampleError):
    builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")
  assert sorted(p.name for p in (tmp_path / "tfds" / "fgvc_aircraft").iterdir()) == ["1.0.0"]
  assert len(builders.load_split("fgvc_aircraft", tmp_path / "tfds", "test")) == 2


def test_wrong_manual_dir_names_what_was_looked_for(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"manual_dir=.*nowhere is not a folder: expected fgvc-aircraft-2013b"):
    builders.prepare("fgvc_aircraft", tmp_path / "nowhere", tmp_path / "tfds")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match=r"manual_dir=.*empty does not hold fgvc_aircraft: none of "
                     r".*fgvc-aircraft-2013b/data/variants\.txt.* exists"):
    builders.prepare("fgvc_aircraft", tmp_path / "empty", tmp_path / "tfds")
  assert not (tmp_path / "tfds").exists()
  with pytest.raises(FileNotFoundError, match=r"Market-1501-v15\.09\.15/bounding_box_train"):
    builders.prepare("market1501", tmp_path / "empty", tmp_path / "tfds")


def test_unprepared_dataset_tells_the_command_to_run(tmp_path):
  with pytest.raises(builders.DatasetNotPreparedError) as error:
    builders.load_split("vegfru", tmp_path / "tfds", "train")
  assert (f"python -m launch.prepare_data --dataset vegfru --manual_dir RAW --data_dir {tmp_path / 'tfds'}"
          in str(error.value))
  assert isinstance(error.value, FileNotFoundError)


def test_unknown_dataset_and_split_list_the_known_ones(aircraft, tmp_path):
  with pytest.raises(ValueError, match=r"dataset 'cars' has no jaxret builder: expected one of \['compcars'"):
    builders.prepare("cars", tmp_path / "raw", tmp_path / "tfds")
  builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds")
  with pytest.raises(ValueError,
                     match=r"split='trainval': \['trainval'\] not in .*\(expected one of \['test', 'train', 'val'\]"):
    builders.load_split("fgvc_aircraft", tmp_path / "tfds", "trainval")


def test_worker_processes_check_images_and_report_the_same_problems(aircraft, tmp_path, monkeypatch):
  monkeypatch.setattr(preparation, "PARALLEL_MIN", 0)  # use workers even for 6 images
  (aircraft / "images" / "1000003.jpg").write_bytes(b"garbage")
  summary = builders.prepare("fgvc_aircraft", tmp_path / "raw", tmp_path / "tfds", skip_bad_examples=True, workers=2)
  assert summary["skipped"] == 1 and "images/1000003.jpg: expected a readable image" in summary["skipped_examples"][0]
  train = builders.load_split("fgvc_aircraft", tmp_path / "tfds", "train")
  assert [train[i]["filename"] for i in range(len(train))] == ["images/1000001.jpg", "images/1000002.jpg"]
  assert train[0]["image"].shape == (40, 40, 3)
