"""`pip install .` installs the jaxret package alone: no top-level `configs` or `launch` package
that would collide with another project's."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_install_puts_only_jaxret_into_site_packages(tmp_path):
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                  "--target", str(tmp_path / "site"), REPO], check=True, capture_output=True, text=True, cwd=tmp_path)
  packages = {name for name in os.listdir(tmp_path / "site")
              if os.path.isdir(tmp_path / "site" / name) and not name.endswith((".dist-info", ".egg-info"))}
  assert packages - {"__pycache__", "bin"} == {"jaxret"}
  assert os.path.exists(tmp_path / "site" / "jaxret" / "training" / "loop.py")
