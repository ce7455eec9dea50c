import os
import shutil
import signal
import time

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from jaxret.training import loop
from tests.training.conftest import final_state, launch, read_metrics, tiny_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

LONG = {"total_steps": 120, "checkpoint_every": 10, "log_every": 5}


def _wait_for_checkpoint(workdir, process, timeout=600):
  """Polls until a finished checkpoint exists; returns its step."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    directory = os.path.join(workdir, "checkpoints")
    done = [int(s) for s in os.listdir(directory) if s.isdigit()
            and os.path.exists(os.path.join(directory, s, "commit_success.txt"))] if os.path.isdir(directory) else []
    if done:
      return max(done)
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.02)
  raise TimeoutError(f"no checkpoint in {workdir}")


def _assert_same_run(workdir_a, workdir_b, step):
  for split in ("train", "val", "test"):
    assert read_metrics(workdir_a, split) == read_metrics(workdir_b, split), split
  a, b = final_state(workdir_a, step), final_state(workdir_b, step)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, compilation_cache):  # pylint: disable=unused-argument
  """The workdir of the run both tests compare with, trained once in this process."""
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  loop.train(tiny_config(**LONG), workdir)
  return workdir


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted):
  killed = str(tmp_path / "killed")

  process = launch(killed, **LONG)
  saved = _wait_for_checkpoint(killed, process)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert saved < LONG["total_steps"]

  resumed = launch(killed, **LONG)
  output, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, output
  restored_step = int(output.split("restored from step ")[1].split()[0])
  assert 0 < restored_step < LONG["total_steps"]
  _assert_same_run(uninterrupted, killed, LONG["total_steps"])


def test_sigterm_saves_and_stops_then_resume_finishes_the_same_run(tmp_path, uninterrupted):
  stopped = str(tmp_path / "stopped")

  process = launch(stopped, **LONG)
  _wait_for_checkpoint(stopped, process)
  process.send_signal(signal.SIGTERM)
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output
  assert "stopped at step" in output
  stop_step = int(output.split("stopped at step ")[1].split()[0])
  assert stop_step < LONG["total_steps"]
  assert os.path.exists(os.path.join(stopped, "checkpoints", str(stop_step), "commit_success.txt"))

  loop.train(tiny_config(**LONG), stopped)
  _assert_same_run(uninterrupted, stopped, LONG["total_steps"])



def test_a_resumed_run_reads_the_batches_it_would_have_read_and_logs_each_step_once(tmp_path):
  config = tiny_config(**{"data.pipeline": "device", "data.augment": "random_resized_crop",
                          "data.resize_size": 36, "data.color_jitter": 0.4, "data.device_prefetch": 2})
  workdir = str(tmp_path)
  loop.train(config, workdir)  # 6 steps, checkpoints at 2, 4, 6
  uninterrupted = final_state(workdir, 6)
  # As a run killed after logging steps 5 and 6 but before their checkpoint. Checkpoint 4 was
  # saved with batch 5 (and by then 6) read ahead: the resumed run must read 5 next.
  shutil.rmtree(os.path.join(workdir, "checkpoints", "6"))
  loop.train(config, workdir)
  for x, y in zip(jax.tree.leaves(uninterrupted), jax.tree.leaves(final_state(workdir, 6))):
    np.testing.assert_array_equal(x, y)
  events = event_accumulator.EventAccumulator(os.path.join(workdir, "tensorboard"))
  events.Reload()
  losses = events.Scalars("train/loss")
  assert [e.step for e in losses] == list(range(1, 7))
  np.testing.assert_allclose([e.value for e in losses], [m["loss"] for m in read_metrics(workdir)], rtol=1e-6)
