"""`python -m launch.convert_weights`: the `jaxret-convert-weights` command
(jaxret/cli/convert_weights.py) from a checkout."""
from jaxret.cli.convert_weights import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
