"""`python -m launch.search`: the `jaxret-search` command (jaxret/cli/search.py) from a checkout."""
from jaxret.cli.search import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
