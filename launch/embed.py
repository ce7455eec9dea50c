"""`python -m launch.embed`: the `jaxret-embed` command (jaxret/cli/embed.py) from a checkout."""
from jaxret.cli.embed import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
