"""Test-session set-up: four fake CPU devices, so sharded code runs sharded in every test, and
the XLA flags the launchers use (so in-process runs and launched runs compute identically)."""
import os

from jaxret.training import distributed

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
distributed.cpu_xla_flags()
