"""Every command has one style: absl flags on its own FlagValues, `--help`, a user's mistake as one
`error:` line with exit status 2, a console script and a `python -m launch.NAME` module."""
import importlib
import importlib.metadata
import json

import numpy as np
import pytest

COMMANDS = ("train", "prepare_data", "convert_weights", "embed", "search", "evaluate_arrays", "plot_curves",
            "export")


@pytest.mark.parametrize("name", COMMANDS)
def test_a_console_script_and_a_launch_module_run_the_command(name):
  command = importlib.import_module(f"jaxret.cli.{name}")
  scripts = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
  assert scripts[f"jaxret-{name.replace('_', '-')}"].load() is command.console_main
  assert importlib.import_module(f"launch.{name}").main is command.main


@pytest.mark.parametrize("name", COMMANDS)
def test_help_and_flag_mistakes(name, capsys):
  command = importlib.import_module(f"jaxret.cli.{name}")
  assert command.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert out.startswith(command.__doc__.strip().splitlines()[0]) and "flags:" in out
  with pytest.raises(SystemExit) as stop:
    command.main(["--no_such_flag=1"])
  assert stop.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "no_such_flag" in err and err.count("\n") == 1, err


def test_every_call_starts_from_the_defaults(tmp_path, capsys):
  from jaxret.cli import evaluate_arrays
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "q.npz", embedding=rng.normal(size=(12, 3)), label=rng.integers(0, 3, 12))
  query = str(tmp_path / "q.npz")
  assert evaluate_arrays.main(["--protocol=retrieval", f"--query={query}", "--nonmi", "--ks=1"]) == 0
  first = json.loads(capsys.readouterr().out)
  assert evaluate_arrays.main(["--protocol", "retrieval", "--query", query]) == 0
  second = json.loads(capsys.readouterr().out)
  assert "nmi" not in first and "recall@2" not in first
  assert "nmi" in second and "recall@32" in second  # --nonmi and --ks did not stick
