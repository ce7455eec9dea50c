import glob
import os

import jax
import numpy as np
import pytest

from jaxret.training import config as config_lib, loop
from tests.training.conftest import final_state, read_metrics, tiny_config

pytestmark = pytest.mark.usefixtures("compilation_cache")


@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("four_devices"))
  results = loop.train(tiny_config(eval_every=2), workdir)
  return workdir, results


def test_run_writes_train_and_eval_metrics(four_device_run):
  workdir, results = four_device_run
  train = read_metrics(workdir, "train")
  assert [m["step"] for m in train] == list(range(1, 7))
  assert all(np.isfinite(m["loss"]) and "accuracy" in m and "learning_rate" in m for m in train)
  (test,) = read_metrics(workdir, "test")
  val = read_metrics(workdir, "val")
  assert [m["step"] for m in val] == [2, 4, 6]
  for metrics in (test, *val, results):
    assert {"recall@1", "recall@2", "recall@4", "recall@8"} <= set(metrics)
  assert test == {"step": 6, "split": "test", **results}
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6"]


def test_test_split_scores_the_model_with_the_best_validation_recall(four_device_run):
  workdir, results = four_device_run
  recall = {m["step"]: m["recall@1"] for m in read_metrics(workdir, "val")}
  assert recall[results["checkpoint_step"]] == max(recall.values())
  assert os.listdir(os.path.join(workdir, "best")) == [str(results["checkpoint_step"])]


def test_one_device_and_four_devices_give_the_same_loss_curve(four_device_run, tmp_path):
  workdir, _ = four_device_run
  loop.train(tiny_config(), str(tmp_path), devices=jax.devices()[:1])
  one = [m["loss"] for m in read_metrics(str(tmp_path))]
  four = [m["loss"] for m in read_metrics(workdir)]
  # Summation order differs between 1 and 4 devices: equal up to float32 rounding (a per-device
  # BatchNorm or a wrongly sharded batch would be off by percents from the first step, gradients
  # not averaged over devices from the second).
  np.testing.assert_allclose(one, four, rtol=1e-5)
  assert len(set(one)) == len(one)  # the loss moves: the comparison covers real updates


def test_rerunning_a_finished_run_changes_nothing(four_device_run):
  workdir, results = four_device_run
  before = open(os.path.join(workdir, "metrics.jsonl")).read()
  again = loop.train(tiny_config(), workdir)
  assert again == pytest.approx(results)
  assert open(os.path.join(workdir, "metrics.jsonl")).read() == before


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
  config = tiny_config(checkpoint_every=1, total_steps=20)
  config.optimizer.learning_rate = 1e12
  config.optimizer.schedule = "constant"
  with pytest.raises(FloatingPointError, match=r"NaN/Inf at step (\d+).*last good checkpoint") as error:
    loop.train(config, str(tmp_path))
  steps = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints"))
  bad_step = int(str(error.value).split("at step ")[1].split(";")[0])
  assert steps and steps[-1] < bad_step
  params = final_state(str(tmp_path), steps[-1])["params"]
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def test_classification_protocol_selects_and_scores_by_accuracy(tmp_path):
  config = tiny_config(eval_every=2, **{"eval.protocol": "classification", "data.val_images_per_class": 1,
                                        "data.query_images_per_class": 1})
  results = loop.train(config, str(tmp_path))
  val = read_metrics(str(tmp_path), "val")
  assert [m["step"] for m in val] == [2, 4, 6] and all(0 <= m["accuracy"] <= 1 for m in val)
  accuracy = {m["step"]: m["accuracy"] for m in val}
  assert accuracy[results["checkpoint_step"]] == max(accuracy.values())
  assert set(results) == {"accuracy", "checkpoint_step"}


def test_every_logged_step_reports_its_speed_and_data_wait(four_device_run):
  workdir, _ = four_device_run
  speed = read_metrics(workdir, "speed")
  assert [m["step"] for m in speed] == [m["step"] for m in read_metrics(workdir, "train")]
  for m in speed:
    assert m["images_per_second"] > 0 and m["steps_per_second"] > 0
    assert m["images_per_second"] == pytest.approx(m["steps_per_second"] * 8)  # batch 8
    assert m["step_ms"] == pytest.approx(1000 / m["steps_per_second"])
    assert 0 < m["data_wait_ms"] < m["step_ms"]  # the wait is part of the step's wall time


def test_profile_steps_leave_a_trace_of_the_annotated_steps(tmp_path):
  loop.train(tiny_config(total_steps=4, checkpoint_every=4, profile_steps=(2, 3)), str(tmp_path))
  traces = glob.glob(str(tmp_path / "profile" / "process_0" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  assert len(traces) == 1, os.listdir(tmp_path)
  content = open(traces[0], "rb").read()
  assert b"step_num" in content  # the StepTraceAnnotation of the traced steps


def test_profile_steps_outside_the_run_are_refused():
  with pytest.raises(ValueError, match=r"config.profile_steps=\(5, 9\).*total_steps=6"):
    config_lib.validate(tiny_config(profile_steps=(5, 9)))
