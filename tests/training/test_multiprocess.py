"""A real two-process job on one machine (CPU backend, gloo collectives, 2 fake devices each)
against one process with 4 devices; and that job losing a process (issue 25)."""
import os
import re
import signal
import time

import numpy as np
import portpicker
import pytest

from jaxret.training import checkpoint, loop
from tests.training.conftest import launch, read_metrics, tiny_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

RUN = {"total_steps": 16, "heartbeat_timeout_seconds": 5}
ENV = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_cpu_use_xnnpack=true")


@pytest.fixture(scope="module")
def single(tmp_path_factory, compilation_cache):  # pylint: disable=unused-argument
  """The run in one process with 4 devices."""
  workdir = str(tmp_path_factory.mktemp("single"))
  loop.train(tiny_config(**RUN), workdir)
  return workdir


def _launch_both(workdir):
  port = portpicker.pick_unused_port()
  return [launch(workdir, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}",
                 env=ENV, **RUN) for i in range(2)]


def _losses(workdir):
  return [m["loss"] for m in read_metrics(workdir)]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, compilation_cache):  # pylint: disable=unused-argument
  """The run in two processes with 2 devices each: (workdir, each process's output)."""
  workdir = str(tmp_path_factory.mktemp("two_processes"))
  processes = _launch_both(workdir)
  outputs = [p.communicate(timeout=900)[0] for p in processes]
  for p, output in zip(processes, outputs):
    assert p.returncode == 0, output
  return workdir, outputs


def test_two_processes_give_the_same_losses_as_one_process_with_four_devices(two_processes, single):
  workdir, outputs = two_processes
  assert "process 0 of 2" in outputs[0] and "process 1 of 2" in outputs[1]
  assert len(_losses(workdir)) == len(_losses(single)) == 16
  # float32 rounding between device layouts (as in test_loop), grown over 16 steps to about 1e-5
  np.testing.assert_allclose(_losses(workdir), _losses(single), rtol=1e-4)


def test_a_killed_process_stops_the_other_naming_it_and_a_rerun_of_both_resumes(tmp_path, two_processes):
  workdir = str(tmp_path / "lost")
  processes = _launch_both(workdir)
  second = os.path.join(workdir, "checkpoints", "2", "commit_success.txt")
  deadline = time.time() + 600
  while not os.path.exists(second) and time.time() < deadline:
    assert processes[1].poll() is None, processes[1].stdout.read()
    time.sleep(0.01)
  processes[1].send_signal(signal.SIGKILL)
  killed = time.time()
  output = processes[0].communicate(timeout=300)[0]
  stopped_after = time.time() - killed
  processes[1].wait()
  assert processes[0].returncode != 0, output
  # Within the 5 s heartbeat timeout and the time to notice (jax's default timeout is 100 s).
  assert stopped_after < 40, (stopped_after, output)
  assert re.search(r"process 1 was lost|stopped sending heartbeats\):\s*1\b|Task 1 heartbeat timeout", output), output
  assert checkpoint.saved_steps(workdir)[-1] < 16  # the job was cut short

  rerun = _launch_both(workdir)
  outputs = [p.communicate(timeout=900)[0] for p in rerun]
  for p, output in zip(rerun, outputs):
    assert p.returncode == 0, output
    assert re.search(r"restored from step ([2-9]|1[0-4])\b", output), output
  for split in ("train", "test"):  # the resumed job trains and scores as the uninterrupted one
    assert read_metrics(workdir, split) == read_metrics(two_processes[0], split), split
