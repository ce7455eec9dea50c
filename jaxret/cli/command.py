"""How every jaxret command runs: absl flags on the command's own `FlagValues` (commands import side
by side and run in-process, from a notebook or a test, as often as wanted), and a user's mistake
(`jaxret.user_errors`: a config key or value, a path, a file) printed as one `error:` line on
stderr with exit status 2. Any other exception is a bug and keeps its traceback."""
import sys
from collections.abc import Callable, Sequence

from absl import flags
from absl import logging as absl_logging

from jaxret import user_errors

HELP = ("-h", "--help", "--helpfull", "-help")


class UserExit(SystemExit):
  """Ends a command on a user's mistake: exit status 2; the message (already printed) is its text."""

  def __init__(self, message: str):
    super().__init__(message)
    self.code = 2


def run(main: Callable[[list[str]], int | None], flag_values: flags.FlagValues, argv: Sequence[str] | None,
        doc: str) -> int:
  """Parses `argv` (default: `sys.argv[1:]`) into `flag_values` (every flag back to its default
  first), then returns `main(positional arguments)` or 0. `--help` prints `doc` and the flags."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if any(arg in HELP for arg in argv):
    print(f"{doc.strip()}\n\nflags:\n{flag_values.get_help()}")
    return 0
  absl_logging.use_absl_handler()
  try:
    flag_values.unparse_flags()
    positional = flag_values([sys.argv[0], *argv])[1:]
    return main(positional) or 0
  except flags.Error as error:
    raise _user_exit(str(error)) from None
  except Exception as error:  # pylint: disable=broad-except
    message = user_errors.message(error)
    if message is None:
      raise
    raise _user_exit(message) from None


def _user_exit(message: str) -> UserExit:
  print(f"error: {message}", file=sys.stderr)
  return UserExit(message)
