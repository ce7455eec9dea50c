"""config.json round trip: every method's config reads back equal, tuples as tuples.

(Restoring a trained run's model is tested end to end in tests/launch/test_embed_search.py.)
"""
import importlib
import json

import pytest

from jaxret import saved_run

CONFIGS = [("baseline", ""), ("a3m", "dataset=market1501"), ("midattr", ""), ("a2net", "dataset=cub,bits=48"),
           ("vapnet", ""), ("deml", "dataset=cub")]


@pytest.mark.parametrize("name,arg", CONFIGS)
def test_every_method_config_reads_back_equal(name, arg, tmp_path):
  config = importlib.import_module(f"configs.{name}").get_config(arg)
  saved_run.save_config(str(tmp_path), config)
  loaded = saved_run.load_config(str(tmp_path))
  assert loaded.to_dict() == config.to_dict()  # list != tuple: tuples come back as tuples
  assert saved_run.fingerprint(loaded) == saved_run.fingerprint(config)
  with pytest.raises(AttributeError):
    loaded.no_such_key = 1  # locked, like the config files


def test_fingerprint_changes_with_any_value(tmp_path):
  config = importlib.import_module("configs.baseline").get_config()
  other = importlib.import_module("configs.baseline").get_config()
  other.optimizer.learning_rate *= 2
  assert saved_run.fingerprint(config) != saved_run.fingerprint(other)


def test_unreadable_config_names_the_file(tmp_path):
  with pytest.raises(ValueError, match="nowhere"):
    saved_run.load_config(str(tmp_path / "nowhere"))
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
    saved_run.load_config(str(tmp_path))


def test_a_config_saved_before_a_setting_existed_reads_back_with_its_default(tmp_path):
  config = importlib.import_module("configs.midattr").get_config()
  saved = json.loads(config.to_json())
  del saved["eval"]["fprs"], saved["eval"]["rerank"]  # as a run saved before these settings were added
  (tmp_path / "config.json").write_text(json.dumps(saved))
  loaded = saved_run.load_config(str(tmp_path))
  assert loaded.eval.fprs == config.eval.fprs and loaded.eval.rerank is False
  assert loaded.to_dict() == config.to_dict()
