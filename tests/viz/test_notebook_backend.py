"""Importing jaxret.viz leaves a notebook's matplotlib backend as it was, and its figures come back
as figures a notebook shows inline."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_importing_every_viz_module_keeps_the_backend():
  modules = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "jaxret", "viz"))
                   if name.endswith(".py") and name != "__init__.py")
  script = ("import matplotlib; matplotlib.use('svg'); import importlib\n"
            f"for name in {modules!r}: importlib.import_module('jaxret.viz.' + name)\n"
            "print(matplotlib.get_backend())")
  result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
  assert result.stdout.strip() == "svg" and len(modules) >= 6
