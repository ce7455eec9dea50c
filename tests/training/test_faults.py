"""Faults a run meets (issue 25): a kill during a checkpoint write or evaluation, a damaged
checkpoint, a full disk, a workdir holding a run of another config."""
import logging
import os
import re
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from jaxret.training import checkpoint, loop
from jaxret.user_errors import InputError
from tests.training.conftest import final_state, launch, read_metrics, tiny_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

RUN = {"total_steps": 8, "checkpoint_every": 2, "keep_checkpoints": 4}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, compilation_cache):  # pylint: disable=unused-argument
  """A run of 8 steps with checkpoints at steps 2, 4, 6 and 8."""
  workdir = str(tmp_path_factory.mktemp("finished"))
  loop.train(tiny_config(**RUN), workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6", "8"]
  return workdir


def _damage(workdir, step, how):
  """Truncates the largest file of checkpoint `step`'s train state, or deletes it."""
  folder = os.path.join(workdir, "checkpoints", str(step), "state")
  files = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]
  largest = max(files, key=os.path.getsize)
  if how == "truncate":
    with open(largest, "r+b") as f:
      f.truncate(os.path.getsize(largest) // 2)
  else:
    os.remove(largest)


def test_a_damaged_latest_checkpoint_is_named_and_the_one_before_it_resumes(finished, tmp_path, caplog):
  workdir = str(tmp_path / "damaged")
  shutil.copytree(finished, workdir)
  _damage(workdir, 8, "truncate")
  _damage(workdir, 6, "delete")
  with caplog.at_level(logging.INFO, logger="jaxret"):
    loop.train(tiny_config(**RUN), workdir)
  unreadable = [r.getMessage() for r in caplog.records if "is unreadable" in r.getMessage()]
  assert len(unreadable) == 2 and "checkpoints/8 is unreadable" in unreadable[0], unreadable
  assert "checkpoints/6 is unreadable" in unreadable[1]
  assert any("restored from step 4" in r.getMessage() for r in caplog.records)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_unreadable"))) == ["6", "8"]  # kept, set aside
  for a, b in zip(jax.tree.leaves(final_state(finished, 8)), jax.tree.leaves(final_state(workdir, 8))):
    np.testing.assert_array_equal(a, b)  # resumed from step 4, the run ends where the uninterrupted one did
  assert read_metrics(workdir, "train") == read_metrics(finished, "train")


def test_when_no_checkpoint_is_readable_the_start_stops_naming_each(finished, tmp_path):
  workdir = str(tmp_path / "all_damaged")
  shutil.copytree(finished, workdir)
  for step in (2, 4, 6, 8):
    _damage(workdir, step, "truncate")
  for _ in range(2):  # a rerun (a requeued job) stops again: never trains from scratch over them
    with pytest.raises(InputError, match=r"no readable checkpoint: .*checkpoints/8 \(.*checkpoints/2 \("):
      loop.train(tiny_config(**RUN), workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6", "8"]
  assert read_metrics(workdir, "train") == read_metrics(finished, "train")


def test_a_workdir_of_another_config_is_refused_unless_starting_over(finished, tmp_path):
  workdir = str(tmp_path / "other")
  shutil.copytree(finished, workdir)
  for overrides, named in (({"data.synthetic_seed": 1}, r"data.synthetic_seed: 0 -> 1"),
                           ({"backbone_width": 0.125}, r"backbone_width: 0.0625 -> 0.125"),
                           ({"method": "deml"}, r"method: 'baseline' -> 'deml'")):
    with pytest.raises(InputError, match=f"holds a run of another config .*{named}.*--start_over"):
      loop.train(tiny_config(**{**RUN, **overrides}), workdir)
  fresh = str(tmp_path / "fresh")
  other = tiny_config(**{**RUN, "data.synthetic_seed": 1})
  loop.train(other, fresh)
  loop.train(other, workdir, start_over=True)
  for a, b in zip(jax.tree.leaves(final_state(fresh, 8)), jax.tree.leaves(final_state(workdir, 8))):
    np.testing.assert_array_equal(a, b)
  assert read_metrics(workdir, "train") == read_metrics(fresh, "train")


def test_a_longer_run_and_other_evaluation_settings_resume(finished, tmp_path, caplog):
  workdir = str(tmp_path / "longer")
  shutil.copytree(finished, workdir)
  with caplog.at_level(logging.INFO, logger="jaxret"):
    loop.train(tiny_config(**{**RUN, "total_steps": 10, "log_every": 2, "eval.fprs": (0.5,)}), workdir)
  assert any("restored from step 8" in r.getMessage() for r in caplog.records)
  assert [m["step"] for m in read_metrics(workdir, "train")][-2:] == [8, 10]


def test_sigkill_while_a_checkpoint_is_written_resumes_from_the_last_complete_one(tmp_path, finished):
  killed = str(tmp_path / "killed")
  process = launch(killed, **{**RUN, "checkpoint_every": 1})
  folder = os.path.join(killed, "checkpoints")
  deadline = time.time() + 600
  while time.time() < deadline:  # kill as soon as a checkpoint is being written after a complete one
    names = os.listdir(folder) if os.path.isdir(folder) else []
    complete = [n for n in names if n.isdigit() and os.path.exists(os.path.join(folder, n, "commit_success.txt"))]
    writing = [n for n in names if "tmp" in n]
    if complete and writing:
      process.send_signal(signal.SIGKILL)
      break
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.001)
  process.wait()
  assert any("tmp" in n for n in os.listdir(folder)), "the kill came after the write finished"
  resumed = launch(killed, **{**RUN, "checkpoint_every": 1})
  output, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, output
  assert "is unreadable" not in output and "restored from step" in output
  for a, b in zip(jax.tree.leaves(final_state(finished, 8)), jax.tree.leaves(final_state(killed, 8))):
    np.testing.assert_array_equal(a, b)


def test_sigkill_during_the_final_evaluation_then_a_rerun_completes_the_same_run(tmp_path, finished):
  killed = str(tmp_path / "killed_in_eval")
  process = launch(killed, **RUN)
  metrics, last = os.path.join(killed, "metrics.jsonl"), os.path.join(killed, "checkpoints", "8")
  deadline = time.time() + 600
  while time.time() < deadline:  # step 8 trained and logged, then evaluation runs before its checkpoint
    if os.path.exists(metrics) and '"step": 8, "split": "train"' in open(metrics).read():
      break
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.001)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not os.path.exists(last), "the kill came after the evaluation"
  resumed = launch(killed, **RUN)
  output, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, output
  for split in ("train", "val", "test"):
    assert read_metrics(killed, split) == read_metrics(finished, split), split


@pytest.fixture
def small_disk(tmp_path):
  """An 8 MiB tmpfs (mounting needs root: the test is skipped, and says so, where it cannot)."""
  path = tmp_path / "disk"
  path.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], capture_output=True,
                           text=True, check=False)
  if mounted.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
  yield str(path)
  subprocess.run(["umount", "--lazy", str(path)], check=True)  # the failed run may hold a file open


def test_a_full_disk_stops_with_a_message_and_the_last_checkpoint_resumes(finished, small_disk):
  workdir = os.path.join(small_disk, "run")  # the finished run as it was at step 4, on a nearly full disk
  shutil.copytree(finished, workdir, ignore=lambda folder, names: [n for n in names if n in ("6", "8", "best")])
  ballast = os.path.join(small_disk, "ballast")
  with open(ballast, "wb") as f:
    f.write(bytes(shutil.disk_usage(small_disk).free - 200 * 1024))  # room for metrics, not a checkpoint
  full = launch(workdir, **RUN)  # a process of its own: orbax's failed writes log from their threads
  output, _ = full.communicate(timeout=600)
  assert full.returncode == 2, output
  assert re.search(r"error: no space left on the device of .*/run \(0.\d MiB free\) while writing the run: the "
                   r"last complete checkpoint, step 4, is intact", output), output
  assert checkpoint.saved_steps(workdir) == [2, 4]
  os.remove(ballast)
  loop.train(tiny_config(**RUN), workdir)  # resumes from step 4 and ends where the uninterrupted run did
  for a, b in zip(jax.tree.leaves(final_state(finished, 8)), jax.tree.leaves(final_state(workdir, 8))):
    np.testing.assert_array_equal(a, b)
  assert read_metrics(workdir, "train") == read_metrics(finished, "train")
