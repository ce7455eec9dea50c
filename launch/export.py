"""`python -m launch.export`: the `jaxret-export` command (jaxret/cli/export.py) from a checkout."""
from jaxret.cli.export import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
