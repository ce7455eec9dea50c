"""TFDS's stock builders, read through tfds.data_source with tfds.testing.mock_data (no TensorFlow)."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import baseline
from jaxret.data import datasets, pipeline, stock


@pytest.mark.parametrize("name", sorted(stock.STOCK_DATASETS))
def test_stock_examples_come_out_in_jaxret_layout(name):
  with tfds.testing.mock_data(num_examples=6):
    source = stock.StockSource(name, "/unused", stock.STOCK_DATASETS[name][1][0])
    assert len(source) == 6
    example = source[4]
  assert example["image"].dtype == np.uint8 and example["image"].ndim == 3 and example["image"].shape[2] == 3
  assert example["label"].dtype == np.int32 and int(example["index"]) == 4


def test_food101_open_set_and_hashing_protocols():
  config = baseline.get_config()
  config.dataset, config.data_dir, config.data.val_classes = "food101", "/unused", 0
  with tfds.testing.mock_data(num_examples=40):
    data = datasets.load(config)
    train, test = (set(pipeline.labels_of(s).tolist()) for s in (data.train, data.test))
    assert train and test and not train & test and set(data.train_classes) == train
    config.eval.protocol = "hashing"
    config.data.val_images_per_class = 0
    data = datasets.load(config)
    assert len(data.test) == 40 and data.test_gallery is data.train and len(data.train) == 40


def test_missing_stock_dataset_says_how_to_build_it(tmp_path):
  with pytest.raises(stock.StockNotPreparedError,
                     match=f"tfds build cars196 --data_dir {tmp_path} --file_format=array_record"):
    stock.StockSource("cars196", str(tmp_path), "train")
