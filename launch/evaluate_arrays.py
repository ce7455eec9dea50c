"""`python -m launch.evaluate_arrays`: the `jaxret-evaluate-arrays` command
(jaxret/cli/evaluate_arrays.py) from a checkout."""
from jaxret.cli.evaluate_arrays import console_main, main  # noqa: F401

if __name__ == "__main__":
  console_main()
