"""Launchers print a user's mistake (config key or value, missing data or weights) as one message
without a traceback and exit 2; a bug keeps its traceback."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_mistyped_config_key_is_one_line_naming_the_key():
  result = launch("-m", "launch.train", "--config", "configs/baseline.py:dataset=synthetic", "--workdir", "/tmp/unused",
                  "--config.totl_steps=5")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert result.stderr.strip() == ("error: --config: unknown key 'totl_steps'; "
                                   'Did you mean "total_steps" instead of "totl_steps"?')


def test_missing_data_and_weights_are_reported_without_a_traceback(tmp_path):
  for flags in (["--config.init_weights=none", f"--config.data_dir={tmp_path}"], []):
    result = launch("-m", "launch.train", "--config", "configs/baseline.py:dataset=cub", "--workdir",
                    str(tmp_path / "run"), *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and ("cub" in result.stderr or "init_weights" in result.stderr)
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_bug_keeps_its_traceback():
  result = launch("-c", "from absl import flags; from jaxret.cli import command; "
                  "command.run(lambda args: 1 / 0, flags.FlagValues(), [], \"doc\")")
  assert result.returncode == 1 and "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
