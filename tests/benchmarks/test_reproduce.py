"""benchmarks/reproduce.py: every row's config is the ImageNet MobileNetV2 with a last map of at
least 4 x 4 and the row's ablation; verdicts and the table follow the seeds' numbers; a tiny
MidAttr row trains, is scored on every descriptor, lands in the JSON lines and is not retrained; a
tiny DeML row reports its learners' similarity."""
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.backbones import get_backbone
from jaxret.training import config as config_lib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import reproduce  # pylint: disable=wrong-import-position

import deml_adversary  # pylint: disable=wrong-import-position,wrong-import-order

TINY = ["--set", "backbone=resnet18", "--set", "backbone_width=0.125", "--set", "init_weights=none",
        "--set", "image_size=32", "--set", "batch_size=8", "--set", "data.synthetic_images_per_class=12"]
ROWS = [(name, row) for name, table in reproduce.TABLES.items() for row in table.rows]


@functools.cache
def last_map_shape(backbone_name: str, width: float, image_size: int) -> tuple[int, ...]:
  images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
  backbone = get_backbone(backbone_name, width)
  return jax.eval_shape(lambda x: backbone.init_with_output(jax.random.key(0), x, train=False)[0]["res5"],
                        images).shape


@pytest.mark.parametrize("name,row", ROWS)
def test_row_config_fine_tunes_imagenet_mobilenet_v2_with_4x4_last_map(name, row):
  table = reproduce.TABLES[name]
  config = reproduce.row_config(table, row, seed=3, steps=90, settings={})
  config_lib.validate(config, num_devices=1)
  assert (config.backbone, config.backbone_width, config.init_weights) == ("mobilenet_v2", 1.0, "imagenet")
  assert (config.seed, config.total_steps, config.eval_every) == (3, 90, 45)
  assert config.eval.protocol == {"midattr": "reid", "a2net": "hashing"}.get(name, "retrieval")
  assert min(last_map_shape(config.backbone, config.backbone_width, config.image_size)[1:3]) >= 4


def test_rows_carry_their_ablation():
  a3m = {row: reproduce.row_config(reproduce.A3M, row, 0, 30, {}) for row in reproduce.A3M.rows}
  assert a3m["baseline1"].method == "baseline"
  assert [a3m[row].a3m.variant for row in ("baseline2", "att1", "att2", "a3m")] == ["baseline2", "att1", "att2", "a3m"]
  assert not a3m["a3m_no_attr_label"].a3m.use_attribute_labels and a3m["a3m"].a3m.use_attribute_labels
  assert {a3m[row].a3m.feature_dim for row in reproduce.A3M.rows if row != "baseline1"} == {512}
  layers = {row: reproduce.row_config(reproduce.MIDATTR, row, 0, 30, {}).midattr.attribute_layer
            for row in reproduce.MIDATTR.rows}
  assert layers == {"none": "none", "res5": "res5", "res4": "res4", "res3": "res3"}
  deml = {row: reproduce.row_config(reproduce.DEML, row, 0, 30, {}) for row in reproduce.DEML.rows}
  assert {row: (c.deml.num_scales, c.deml.num_branches, c.deml.adversary) for row, c in deml.items()} == {
      "binomial": (1, 1, "none"), "no_adversary": (1, 4, "none"), "grl": (1, 4, "grl"), "hinge": (1, 4, "hinge"),
      "deml": (2, 4, "grl")}
  assert {(c.embedding_dim, c.deml.adversary_input) for c in deml.values()} == {(512, "unit")}
  a2net = {row: reproduce.row_config(reproduce.A2NET, row, 0, 30, {}) for row in reproduce.A2NET.rows}
  assert sorted((c.a2net.variant, c.a2net.bits) for c in a2net.values()) == sorted(
      (v, b) for v in ("vanilla", "attention", "reconstruction", "a2net") for b in (12, 24, 32, 48))
  assert {c.state_update_every * c.batch_size for c in a2net.values()} == {640}  # one pass over Omega
  vapnet = {row: reproduce.row_config(reproduce.VAPNET, row, 0, 30, {}) for row in reproduce.VAPNET.rows}
  assert vapnet.pop("baseline").method == "baseline"
  assert {row: (c.vapnet.variant, c.vapnet.weight) for row, c in vapnet.items()} == {
      "aux_only": ("aux_only", 10.0), "no_mean_encoders": ("no_mean_encoders", 10.0),
      "consistency_only": ("consistency_only", 10.0), "full": ("full", 10.0), "full_lambda_0.1": ("full", 0.1)}
  assert {(c.vapnet.num_views, c.vapnet.attribute_dim, c.embedding_dim) for c in vapnet.values()} == {(4, 256, 0)}


def test_unknown_setting_names_the_key():
  with pytest.raises(KeyError, match="learning_rat"):
    reproduce.row_config(reproduce.A3M, "a3m", 0, 30, {"optimizer.learning_rat": 0.1})


def test_verdict_compares_seed_ranges():
  assert reproduce.verdict(np.array([0.50, 0.52]), np.array([0.53, 0.60])) == "reproduced"
  assert reproduce.verdict(np.array([0.53, 0.60]), np.array([0.50, 0.52])) == "not reproduced"
  assert reproduce.verdict(np.array([0.50, 0.55]), np.array([0.54, 0.60])) == "within noise"
  assert reproduce.verdict(np.array([0.50]), np.array([0.54, 0.60])) == "reproduced (1 seed)"
  assert reproduce.verdict(np.array([]), np.array([0.5])) == "missing"


def test_markdown_reports_mean_and_half_range():
  def line(row, seed, recall, rank1, map_, **extra):
    return {"row": row, "seed": seed, "retrieval": {"recall@1": recall, "map@r": recall / 2},
            "reid": {"rank1": rank1, "map": map_}, **extra}
  lines = [line("baseline1", s, r, 0.3, 0.2, seconds=600) for s, r in ((0, 0.40), (1, 0.50))]
  lines += [line("a3m", s, r, 0.1, 0.1, attribute_accuracy=0.8, seconds=300) for s, r in ((0, 0.70), (1, 0.72))]
  text = reproduce.markdown(reproduce.A3M, lines)
  assert "| baseline1 | 2 | 0.450 ± 0.050 |" in text and "| a3m | 2 | 0.710 ± 0.010 |" in text
  assert "| 10.0 |" in text and "| 5.0 |" in text  # minutes per seed
  claim = next(line for line in text.splitlines() if line.startswith("| baseline1 < a3m |"))
  assert claim.split(" | ")[1:] == ["0.450 → 0.710: reproduced", "0.225 → 0.355: reproduced",
                                    "0.300 → 0.100: not reproduced", "0.200 → 0.100: not reproduced |"]


def test_markdown_judges_a_claim_on_its_own_metrics_only():
  lines = [{"row": row, "seed": 0, "retrieval": {"recall@1": recall, "recall@4": 1.0, "map@r": recall / 2},
            "learners": {"sim": sim}, "seconds": 60} for row, recall, sim in
           (("no_adversary", 0.5, 0.9), ("grl", 0.6, -0.1), ("hinge", 0.4, 0.2))]
  text = reproduce.markdown(reproduce.DEML, lines)
  claims = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines()}
  assert claims["no_adversary < grl"] == ["0.500 → 0.600: reproduced (1 seed)", "0.250 → 0.300: reproduced (1 seed)",
                                          "- |"]
  assert claims["learner sim: grl < no_adversary"] == ["-", "-", "-0.100 → 0.900: reproduced (1 seed) |"]
  assert claims["no_adversary < hinge (the public code's term)"][0] == "0.500 → 0.400: not reproduced (1 seed)"
  assert claims["binomial < deml"] == ["- → -: missing", "- → -: missing", "- |"]


def test_tiny_deml_row_reports_the_similarity_of_its_learners(tmp_path):
  """The two-scale row's "sim" is that of the model's own CA outputs `[N, I, J, d]` (the embedding's
  scale-major layout read back right), and sits on the cosine's range."""
  out = tmp_path / "deml.jsonl"
  reproduce.main(["--method", "deml", "--rows", "deml", "--seeds", "0", "--steps", "1", "--workdir", str(tmp_path),
                  "--out", str(out), *TINY, "--set", "embedding_dim=32", "--set", "data.classes_per_batch=2"])
  (line,) = [json.loads(text) for text in out.read_text().splitlines()]
  assert set(line["retrieval"]) >= {"recall@1", "map@r"} and -1 <= line["learners"]["sim"] <= 1
  config = reproduce.row_config(reproduce.DEML, "deml", 0, 1, dict(reproduce.parse_setting(s) for s in TINY[1::2]))
  config = reproduce.override(config, {"embedding_dim": 32, "data.classes_per_batch": 2})
  expected = deml_adversary.learner_statistics(deml_adversary.test_learners(config, str(tmp_path / "deml" / "deml_s0")))
  assert line["learners"]["sim"] == pytest.approx(expected["sim"], abs=1e-4)
  assert line["learners"]["metric_agreement"] == pytest.approx(expected["metric_agreement"], abs=1e-4)


def test_tiny_midattr_row_is_scored_on_every_descriptor_and_resumes(tmp_path):
  out = tmp_path / "midattr.jsonl"
  argv = ["--method", "midattr", "--rows", "res3", "--seeds", "0", "--steps", "1", "--workdir", str(tmp_path),
          "--out", str(out), *TINY, "--set", "midattr.part_dim=8"]
  reproduce.main(argv)
  (line,) = [json.loads(text) for text in out.read_text().splitlines()]
  assert (line["method"], line["row"], line["seed"], line["checkpoint_step"]) == ("midattr", "res3", 0, 1)
  for descriptor in ("fused", "global", "part"):
    assert set(line[descriptor]) >= {"rank1", "map"} and 0 <= line[descriptor]["map"] <= 1
  assert 0 <= line["attribute_accuracy"] <= 1 and "map" in line["val"]
  assert line["settings"]["midattr.part_dim"] == "8"
  reproduce.main(argv)  # the row is in --out: nothing is trained again
  assert len(out.read_text().splitlines()) == 1


def test_tiny_a2net_row_keeps_the_reencoded_metrics_and_reports_bit_correlation(tmp_path):
  out = tmp_path / "a2net.jsonl"
  reproduce.main(["--method", "a2net", "--rows", "a2net_12", "--seeds", "0", "--steps", "2", "--workdir",
                  str(tmp_path), "--out", str(out), *TINY, "--set", "data.val_images_per_class=2",
                  "--set", "data.query_images_per_class=4", "--set", "a2net.transform_dim=8",
                  "--set", "data.subset_size=8", "--set", "state_update_every=1"])
  (line,) = [json.loads(text) for text in out.read_text().splitlines()]
  assert set(line["hashing"]) >= {"map", "map_tie_aware", "reencoded/map", "reencoded/map_tie_aware"}
  assert set(line["bits"]) == {"test", "database", "z"} and all(0 <= v <= 1 for v in line["bits"].values())
  assert line["bits"]["z"] < 0.5  # two updates of Z from random codes: far from one code for all images
