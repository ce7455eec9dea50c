import numpy as np
import pytest

from configs import baseline
from jaxret.data import datasets


def _config(**data):
  config = baseline.get_config()
  config.data.synthetic_images_per_class = 6
  config.data.update(data)
  return config


def _labels(source):
  return {int(source[i]["label"]) for i in range(len(source))}


def test_open_set_protocol_holds_out_classes_for_validation_and_test():
  data = datasets.load(_config(val_classes=10))
  train, val, test = map(_labels, (data.train, data.val, data.test))
  assert train == set(data.train_classes) == set(range(90))
  assert val == set(range(90, 100)) and test == set(range(100, 200))
  assert data.test_gallery is None and data.val_gallery is None


def test_hashing_protocol_queries_unseen_images_of_the_training_classes():
  config = _config(val_images_per_class=1, query_images_per_class=2)
  config.eval.protocol = "hashing"
  data = datasets.load(config)
  assert data.test_gallery is data.train and data.val_gallery is data.train
  assert (len(data.train), len(data.val), len(data.test)) == (200 * 3, 200, 200 * 2)
  assert _labels(data.train) == _labels(data.test) == set(data.train_classes) == set(range(200))
  images = [np.stack([s[i]["image"] for i in range(0, len(s), 7)]) for s in (data.train, data.val, data.test)]
  flat = [{x.tobytes() for x in split} for split in images]
  assert not (flat[0] & flat[1] or flat[0] & flat[2] or flat[1] & flat[2])


def test_classification_protocol_scores_unseen_images_of_the_training_classes_without_a_gallery():
  config = _config(val_images_per_class=1, query_images_per_class=2)
  config.eval.protocol = "classification"
  data = datasets.load(config)
  config.eval.protocol = "hashing"
  hashing = datasets.load(config)
  assert data.test_gallery is None and data.val_gallery is None
  assert data.train_classes == hashing.train_classes
  for split in ("train", "val", "test"):  # the same images as the hashing protocol's
    got, want = getattr(data, split), getattr(hashing, split)
    assert len(got) == len(want) and [got[i]["index"] for i in (0, len(got) - 1)] == [want[i]["index"] for i in
                                                                                       (0, len(want) - 1)]


def test_unknown_dataset_is_named():
  config = _config()
  config.dataset = "cub200"
  with pytest.raises(ValueError, match="config.dataset='cub200' is not a known dataset"):
    datasets.load(config)


def test_unprepared_dataset_names_the_command_to_run(tmp_path):
  config = _config()
  config.dataset = "cub"
  with pytest.raises(ValueError, match="config.data_dir is empty"):
    datasets.load(config)
  config.data_dir = str(tmp_path)
  with pytest.raises(FileNotFoundError, match=f"python -m launch.prepare_data --dataset cub --manual_dir RAW --data_dir {tmp_path}"):
    datasets.load(config)
