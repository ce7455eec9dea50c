"""`python -m launch.plot_curves`: the `jaxret-plot-curves` command
(jaxret/cli/plot_curves.py) from a checkout."""
from jaxret.cli.plot_curves import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
