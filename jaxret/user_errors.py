"""Mistakes in what a user gave (a config key or value, a path, a dataset, a weights file): the
commands (`jaxret.cli.command`) print their message alone on stderr and exit with status 2. Any
other exception is a bug and keeps its traceback."""
import traceback


class UserError(Exception):
  """Marks an error whose message says what to change (the key, file or value and what was expected)."""


class InputError(UserError, ValueError):
  """A config key or value, or a path, that cannot be used."""


def _config_override_typo(error: BaseException) -> str | None:
  """The message for `--config.KEY=...` naming no config key (ml_collections raises an
  AttributeError while absl parses the flags), else None."""
  if not isinstance(error, AttributeError) or not isinstance(error.__context__, KeyError):
    return None
  if not any("ml_collections/config_flags" in frame.filename for frame in traceback.extract_tb(error.__traceback__)):
    return None
  return "--config: unknown key " + str(error.__context__.args[0]).replace("\n", "; ")


def message(error: BaseException) -> str | None:
  """What to print for a user's mistake; None for a bug."""
  if isinstance(error, UserError):
    return str(error.args[0]) if error.args else str(error)
  return _config_override_typo(error)
