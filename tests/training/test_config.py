import os
import subprocess
import sys

import pytest

from configs import baseline
from jaxret.training import config as config_lib
from jaxret.training import loop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _launch(*args):
  return subprocess.run([sys.executable, "-m", "launch.train", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=300)


def test_config_key_typo_stops_the_launcher_naming_the_key(tmp_path):
  result = _launch("--config", "configs/baseline.py", "--workdir", str(tmp_path), "--config.total_stepz=5")
  assert result.returncode != 0
  assert "total_stepz" in result.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


def test_config_file_argument_typo_is_named():
  with pytest.raises(ValueError, match="'datset=synthetic'"):
    baseline.get_config("datset=synthetic")


def test_config_is_locked():
  config = baseline.get_config()
  with pytest.raises(AttributeError):
    config.total_stepz = 5


def test_missing_dataset_is_named(tmp_path):
  config = baseline.get_config()
  config.dataset = "cub200"
  with pytest.raises(ValueError, match="config.dataset='cub200'.*expected one of"):
    loop.train(config, str(tmp_path))


def test_batch_size_not_divisible_by_devices_stops_before_compiling(tmp_path):
  config = baseline.get_config()
  config.batch_size = 30
  with pytest.raises(ValueError, match="config.batch_size=30 is not divisible by the 4 devices"):
    loop.train(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.parametrize("key,value,message", [
    ("method", "deeml", "config.method='deeml'"),
    ("compute_dtype", "fp16", "config.compute_dtype='fp16'"),
    ("total_steps", 0, "config.total_steps=0"),
    ("init_weights", "/no/resnet18.pth", "config.init_weights='/no/resnet18.pth': no such file"),
    ("eval.protocol", "reID", "config.eval.protocol='reID'"),
    ("eval.metric", "l2", "config.eval.metric='l2'"),
    ("eval.selection_metric", "rank1", "config.eval.selection_metric='rank1'.*retrieval metrics"),
    ("eval.rerank", True, "config.eval.rerank=True.*protocol='retrieval'.*offered for the reid protocol"),
])
def test_bad_values_are_named(key, value, message):
  config = baseline.get_config()
  *parents, leaf = key.split(".")
  target = config
  for parent in parents:
    target = target[parent]
  target[leaf] = value
  with pytest.raises(ValueError, match=message):
    config_lib.validate(config, num_devices=1)
