"""datasets.load on prepared datasets: each protocol's splits from tiny fixtures in the real layouts."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from configs import baseline
from jaxret.data import builders, datasets, pipeline
from jaxret.data.builders import market1501
from tests.data.builders.test_market1501 import attribute_rows, write_attribute_mat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_idx(folder, prefix, labels):
  """Fashion-MNIST IDX files (uncompressed) holding one flat grey image per label."""
  images = np.repeat(np.asarray(labels, np.uint8)[:, None, None] * 20, 28, 1).repeat(28, 2)
  with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
    f.write(np.array([2051, len(labels), 28, 28], ">i4").tobytes() + images.tobytes())
  with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
    f.write(np.array([2049, len(labels)], ">i4").tobytes() + np.asarray(labels, np.uint8).tobytes())


def _config(dataset, data_dir, protocol, **data):
  config = baseline.get_config()
  config.dataset, config.data_dir, config.eval.protocol = dataset, str(data_dir), protocol
  config.data.update(data)
  return config


def _labels(source):
  return pipeline.labels_of(source).tolist()


def test_fashion_mnist_open_set_and_hashing_protocols(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  _write_idx(raw, "train", np.tile(np.arange(10), 6))  # 6 images per class
  _write_idx(raw, "t10k", np.tile(np.arange(10), 2))
  builders.prepare("fashion_mnist", raw, tmp_path / "tfds")

  data = datasets.load(_config("fashion_mnist", tmp_path / "tfds", "retrieval", val_classes=1))
  assert data.train_classes == (0, 1, 2, 3)
  assert sorted(set(_labels(data.train))) == [0, 1, 2, 3] and len(data.train) == 24
  assert set(_labels(data.val)) == {4} and len(data.val) == 6
  assert sorted(_labels(data.test)) == sorted([5, 6, 7, 8, 9] * 2)  # the official test images of 5-9
  assert data.test_gallery is None
  example = data.test[0]
  assert example["image"].shape == (28, 28, 3) and example["image"][0, 0, 0] == 20 * example["label"]

  data = datasets.load(_config("fashion_mnist", tmp_path / "tfds", "hashing", val_images_per_class=2))
  assert len(data.test) == 20 and data.test_gallery is data.train and data.val_gallery is data.train
  assert len(data.train) == 40 and len(data.val) == 20 and data.train_classes == tuple(range(10))
  train_files = {data.train[i]["index"] for i in range(len(data.train))}
  assert len(train_files) == 40

  data = datasets.load(_config("fashion_mnist", tmp_path / "tfds", "classification", val_images_per_class=2))
  assert (len(data.train), len(data.val), len(data.test)) == (40, 20, 20) and data.test_gallery is None
  assert sorted(_labels(data.test)) == sorted(list(range(10)) * 2)  # the official test images, closed set


def _market(root):
  folder = root / "Market-1501-v15.09.15"
  names = {
      "bounding_box_train": ["0002_c1s1_000451_01.jpg", "0002_c2s1_000301_01.jpg", "0007_c1s1_000101_02.jpg",
                             "0007_c3s1_000201_01.jpg", "0010_c1s1_000101_01.jpg", "0010_c2s1_000101_01.jpg"],
      "query": ["0011_c1s1_000101_00.jpg", "0012_c2s1_000101_00.jpg"],
      "bounding_box_test": ["0011_c2s1_000201_01.jpg", "0012_c1s1_000301_01.jpg", "0000_c1s1_000401_01.jpg",
                            "-1_c3s1_000501_01.jpg", "0011_c1s1_000601_01.jpg"],
  }
  for sub, files in names.items():
    (folder / sub).mkdir(parents=True)
    for i, name in enumerate(files):
      Image.new("RGB", (16, 32), (10 * i, 50, 90)).save(folder / sub / name)
  write_attribute_mat(root / "market_attribute.mat", "market_attribute", list(market1501.ATTRIBUTE_NAMES),
                      attribute_rows([2, 7, 10], seed=0), attribute_rows([11, 12], seed=1))


def test_market1501_reid_protocol_uses_the_official_query_and_gallery(tmp_path):
  _market(tmp_path / "raw")
  builders.prepare("market1501", tmp_path / "raw", tmp_path / "tfds")
  data = datasets.load(_config("market1501", tmp_path / "tfds", "reid", val_classes=1))
  assert data.train_classes == (2, 7) and set(_labels(data.val)) == {10}
  assert _labels(data.test) == [11, 12]
  assert sorted(_labels(data.test_gallery)) == [-1, 0, 11, 11, 12]
  cameras = [int(data.test_gallery[i]["camera"]) for i in range(len(data.test_gallery))]
  assert len(cameras) == 5


def test_prepare_data_command_prints_one_json_summary_line(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  _write_idx(raw, "train", np.arange(10))
  _write_idx(raw, "t10k", np.arange(4))
  result = subprocess.run(
      [sys.executable, "-m", "launch.prepare_data", "--dataset", "fashion_mnist", "--manual_dir", str(raw),
       "--data_dir", str(tmp_path / "tfds")], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  (line,) = result.stdout.splitlines()
  assert json.loads(line) == {"dataset": "fashion_mnist", "skipped": 0, "splits": {
      "train": {"images": 10, "classes": 10, "cameras": 0, "attributes": 0, "skipped": 0},
      "test": {"images": 4, "classes": 4, "cameras": 0, "attributes": 0, "skipped": 0}}}


def test_a_killed_preparation_is_never_read_as_complete_and_a_rerun_completes(tmp_path):
  raw, data_dir = tmp_path / "raw", tmp_path / "tfds"
  raw.mkdir()
  _write_idx(raw, "train", np.arange(30000) % 10)  # a few seconds of work
  _write_idx(raw, "t10k", np.arange(10))
  command = [sys.executable, "-m", "launch.prepare_data", "--dataset", "fashion_mnist", "--manual_dir", str(raw),
             "--data_dir", str(data_dir)]
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # its image-checking workers die with it, as on a lost node
  folder = data_dir / "jaxret_fashion_mnist"
  deadline = time.time() + 300
  while not (folder.is_dir() and any(p.name.startswith("incomplete.") and any(p.rglob("*array_record*"))
                                     for p in folder.iterdir())):
    assert process.poll() is None and time.time() < deadline, "the preparation ended before it could be killed"
    time.sleep(0.05)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  config = _config("fashion_mnist", data_dir, "retrieval", val_classes=2)
  with pytest.raises(FileNotFoundError, match="python -m launch.prepare_data --dataset fashion_mnist"):
    datasets.check_available(config)  # the half-written folder is not a prepared dataset
  assert subprocess.run(command, cwd=REPO, capture_output=True, timeout=600).returncode == 0
  assert len(datasets.load(config).train) > 0
