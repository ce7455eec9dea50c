"""`distributed.cpu_xla_flags`: jaxret's XLA:CPU defaults, never over a flag the user set."""
import importlib.metadata

from jaxret.training import distributed

YNN = "--xla_cpu_experimental_ynn_fusion_type"


def test_defaults_are_added_to_the_users_other_flags():
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  distributed.cpu_xla_flags(environ)
  flags = environ["XLA_FLAGS"].split()
  assert flags[0] == "--xla_force_host_platform_device_count=2" and "--xla_cpu_use_xnnpack=true" in flags
  assert (f"{YNN}=dot,reduce" in flags) == (importlib.metadata.version("jaxlib") in distributed._YNN_FLAG_JAXLIBS)


def test_a_flag_the_user_set_is_kept():
  environ = {"XLA_FLAGS": f"--xla_cpu_use_xnnpack=false {YNN}=individual_dot"}
  distributed.cpu_xla_flags(environ)
  assert environ["XLA_FLAGS"].split() == ["--xla_cpu_use_xnnpack=false", f"{YNN}=individual_dot"]


def test_no_flags_set_gives_only_the_defaults():
  environ = {}
  distributed.cpu_xla_flags(environ)
  assert environ["XLA_FLAGS"].startswith("--xla_cpu_use_xnnpack=true")
