"""benchmarks/a2net_frozen_backbone.py: the heads on cached backbone maps are jaxret's A2-Net on the
images; rows follow the paper's outer-iteration schedule; a tiny table trains, chooses its outer
iteration on validation, lands in reproduce.py's line format and resumes."""
import json
import os
import sys

import numpy as np
import pytest

from jaxret.data import datasets
from jaxret.eval import evaluator as evaluator_lib
from jaxret.methods import a2net
from jaxret import mesh as mesh_lib
from jaxret.training import loop, optimizer, state as state_lib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import a2net_frozen_backbone as frozen  # pylint: disable=wrong-import-position
import reproduce  # pylint: disable=wrong-import-position,wrong-import-order

TINY = {"backbone": "resnet18", "backbone_width": 0.125, "init_weights": "none", "image_size": 32,
        "batch_size": 8, "data.synthetic_images_per_class": 12, "data.val_images_per_class": 2,
        "data.query_images_per_class": 4, "a2net.transform_dim": 8, "data.subset_size": 16,
        "data.subset_epochs": 2}


def test_rows_follow_the_papers_schedule_with_the_learning_rate_of_their_length():
  config = frozen.row_config("attention_12", seed=1, outer=60, settings={})
  assert (config.a2net.variant, config.a2net.bits, config.seed) == ("attention", 12, 1)
  assert (config.data.subset_size, config.data.subset_epochs, config.batch_size) == (1000, 3, 32)
  assert config.state_update_every == 3 * (1000 // 32)  # one outer iteration: 3 passes over Omega
  assert config.total_steps == 60 * config.state_update_every
  assert tuple(config.optimizer.decay_boundaries) == (50 * config.state_update_every,)  # lr / 10 at the 50th
  assert config.optimizer.learning_rate == frozen.LEARNING_RATE[12] != frozen.LEARNING_RATE[32]
  assert frozen.row_config("a2net_32", 0, 60, {}).optimizer.learning_rate == frozen.LEARNING_RATE[32]


@pytest.fixture(scope="module")
def tiny():
  config = frozen.row_config("a2net_12", 0, 2, TINY)
  data = datasets.load(config)
  return loop.with_dataset_info(config, data), data


def test_heads_on_the_cached_maps_give_embed_fn_of_the_images(tiny):
  config, data = tiny
  maps = frozen.backbone_maps(config, data)
  assert [len(maps[name]) for name in frozen.SPLITS] == [len(data.train), len(data.val), len(data.test)]
  tx, _ = optimizer.make_optimizer(config)
  mesh = mesh_lib.make_mesh()
  sample = {"image": np.zeros((1, config.image_size, config.image_size, 3), np.float32)}
  state = state_lib.create(a2net.METHOD, config, tx, sample, mesh)  # the same seed: the backbone of the maps
  embedded = evaluator_lib.Embedder(a2net.METHOD, config, mesh)(data.test, state.params, state.method_state,
                                                                attributes=False)
  on_maps = frozen.encode(config, state.params, state.method_state, maps["test"])
  np.testing.assert_allclose(on_maps, embedded["embedding"], atol=1e-5)
  lookup = {c: i for i, c in enumerate(data.train_classes)}
  np.testing.assert_array_equal(maps["test_label"], [lookup[int(c)] for c in embedded["label"]])


def test_tiny_table_chooses_its_outer_iteration_on_validation_and_resumes(tiny, tmp_path):
  out = tmp_path / "a2net.jsonl"
  argv = ["--rows", "vanilla_12,a2net_12", "--seeds", "0", "--outer", "3", "--eval_every", "1",
          "--out", str(out), "--maps", str(tmp_path / "maps.npz"), "--gradients",
          *[arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]]
  frozen.main(argv)
  lines = [json.loads(text) for text in out.read_text().splitlines()]
  assert [line["row"] for line in lines] == ["vanilla_12", "a2net_12"]
  for line in lines:
    history = {int(k): v for k, v in line["val_map_by_outer_iteration"].items()}
    assert sorted(history) == [1, 2, 3]
    assert line["val"]["map"] == max(history.values()) == history[line["checkpoint_outer_iteration"]]
    assert set(line["hashing"]) >= {"map", "map_tie_aware", "reencoded/map", "reencoded/map_tie_aware"}
    assert all(0 <= v <= 1 for v in line["bits"].values())
    assert line["settings"]["state_update_every"] == "4" and line["steps"] == 12  # 2 passes of 2 batches
  assert reproduce.value(lines, "a2net_12", "hashing/reencoded/map").shape == (1,)
  assert "gradient_norms" not in lines[0]  # vanilla has no Eq. 7 / 8 parameters to share
  for norms in lines[1]["gradient_norms"].values():
    assert set(norms) == {"pair", "eq7_reconstruction", "eq8_decorrelation", "quantization"}
    assert all(v > 0 for v in norms.values())
  frozen.main(argv)  # both rows are in --out: nothing is trained again
  assert len(out.read_text().splitlines()) == 2
