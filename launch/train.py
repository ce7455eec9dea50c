"""`python -m launch.train`: the `jaxret-train` command (jaxret/cli/train.py) from a checkout."""
from jaxret.cli.train import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
