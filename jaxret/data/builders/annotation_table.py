"""Whitespace-separated annotation files (`images.txt`, split lists, ...) read line by line.

A line that does not parse is reported through `Problems` as `file:line: what was expected;
the line reads '...'` and left out of the table; its first token, when it has one, is kept in
`Table.bad_keys` so the builder can drop that example without reporting it twice.
"""
from collections.abc import Callable, Sequence
import dataclasses
import pathlib
from typing import Any

from jaxret.data.builders.problems import Problems, where


@dataclasses.dataclass(frozen=True)
class Table:
  """Parsed lines of one file: `rows[i] = (line number, parsed value)`, 1-based lines;
  `bad_lines` counts the lines left out, `bad_keys` holds their first tokens."""
  path: pathlib.Path
  rows: list[tuple[int, Any]]
  bad_lines: int
  bad_keys: set[str]


def expect_fields(fields: Sequence[str], form: str, count: int | None = None) -> None:
  """Raises ValueError unless `fields` has `count` entries (default: the words in `form`)."""
  count = len(form.split()) if count is None else count
  if len(fields) != count:
    raise ValueError(f"expected {count} fields '{form}', found {len(fields)}")


def to_int(text: str, what: str) -> int:
  """`int(text)`, or a ValueError saying that `what` should be an integer."""
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"expected {what} to be an integer, found {text!r}") from None


def to_float(text: str, what: str) -> float:
  """`float(text)`, or a ValueError saying that `what` should be a number."""
  try:
    return float(text)
  except ValueError:
    raise ValueError(f"expected {what} to be a number, found {text!r}") from None


def require(path: pathlib.Path, layout: str) -> pathlib.Path:
  """Returns `path`, or raises FileNotFoundError naming it and the layout that needs it."""
  if not path.exists():
    raise FileNotFoundError(f"{path} does not exist: expected {layout}")
  return path


def read_table(path: pathlib.Path, problems: Problems, parse: Callable[[list[str]], Any], *,
               maxsplit: int = -1, skip_lines: int = 0, split: str | None = None) -> Table:
  """Parses every non-empty line of `path` after the first `skip_lines`.

  Args:
    path: the annotation file; it must exist.
    problems: where unparseable lines go (raised, or skipped and counted).
    parse: `fields -> value`, raising ValueError (saying what was expected) on a bad line.
    maxsplit: passed to `str.split`, so that a last field may hold spaces (class names).
    skip_lines: header lines to ignore.
    split: the split a bad line's example belongs to, for the summary's counts.
  Returns:
    The parsed rows with their 1-based line numbers.
  """
  rows, bad_keys, bad_lines = [], set(), 0
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      if number <= skip_lines:
        continue
      try:
        text = raw.decode("utf-8").strip()
      except UnicodeDecodeError:
        bad_lines += 1
        problems.report(f"{where(path, number)}: expected UTF-8 text, the line reads {raw!r}", split)
        continue
      if not text:
        continue
      fields = text.split(None, maxsplit)
      try:
        rows.append((number, parse(fields)))
      except ValueError as e:
        bad_lines += 1
        bad_keys.add(fields[0])
        problems.report(f"{where(path, number)}: {e}; the line reads {text!r}", split)
  return Table(path=path, rows=rows, bad_lines=bad_lines, bad_keys=bad_keys)
