"""A real two-process job on one machine (CPU backend, gloo collectives, 2 fake devices each)
against one process with 4 devices."""
import os

import numpy as np
import portpicker
import pytest

from jaxret.training import loop
from tests.training.conftest import launch, read_metrics, tiny_config

pytestmark = pytest.mark.usefixtures("compilation_cache")


def test_two_processes_give_the_same_losses_as_one_process_with_four_devices(tmp_path):
  single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
  loop.train(tiny_config(), single)

  port = portpicker.pick_unused_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_cpu_use_xnnpack=true")
  processes = [launch(multi, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                      f"--process_id={i}", env=env) for i in range(2)]
  outputs = [p.communicate(timeout=900)[0] for p in processes]
  for p, output in zip(processes, outputs):
    assert p.returncode == 0, output
  assert "process 0 of 2" in outputs[0] and "process 1 of 2" in outputs[1]

  one = [m["loss"] for m in read_metrics(single)]
  two = [m["loss"] for m in read_metrics(multi)]
  assert len(two) == len(one) == 6
  np.testing.assert_allclose(two, one, rtol=1e-5)  # float32 rounding, as in test_loop
