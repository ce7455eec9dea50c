"""Bad input found while preparing a dataset: raised at once, or skipped and counted.

Every problem names where it is (a file, and a line when it comes from an annotation file)
and what was expected there. `Problems(skip=False)` raises the first one as a
`BadExampleError`; `Problems(skip=True)` logs it, remembers it and lets the builder drop the
example, so the summary can report how many were skipped and why. Nothing is dropped without
passing through here.
"""
import logging
import os

log = logging.getLogger(__name__)


class BadExampleError(ValueError):
  """An image or annotation line that cannot be used. The message starts with `file[:line]`."""


def where(path: os.PathLike | str, line: int | None = None) -> str:
  """`"path:line"`, or `"path"` when there is no line."""
  return f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)


class Problems:
  """Collects bad examples of one preparation run.

  Args:
    skip: False raises on the first problem; True logs it and lets the caller skip it.
  """

  def __init__(self, skip: bool):
    self.skip = skip
    self.messages: list[str] = []
    self.skipped_by_split: dict[str, int] = {}

  def report(self, message: str, split: str | None = None) -> None:
    """Raises `BadExampleError(message)`, or records it when skipping.

    Args:
      message: starts with `where(path, line)`, says what is wrong and what was expected.
      split: the split the dropped example belonged to, when known.
    """
    if not self.skip:
      raise BadExampleError(message + " (prepare(..., skip_bad_examples=True) skips and counts such examples)")
    log.warning("skipping: %s", message)
    self.messages.append(message)
    if split is not None:
      self.skipped_by_split[split] = self.skipped_by_split.get(split, 0) + 1

  def __len__(self) -> int:
    return len(self.messages)
