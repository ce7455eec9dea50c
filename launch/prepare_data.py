"""`python -m launch.prepare_data`: the `jaxret-prepare-data` command
(jaxret/cli/prepare_data.py) from a checkout."""
from jaxret.cli.prepare_data import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
