"""The check that a weight file's names and shapes are exactly what a model expects."""
from typing import Sequence

MAX_LISTED = 12


class WeightMismatchError(ValueError):
  """A weight file lacks, adds or mis-shapes tensors compared with the model; `missing`,
  `unexpected` and `misshaped` (name -> (shape in file, expected shape)) say which."""

  def __init__(self, message: str, missing: list[str], unexpected: list[str],
               misshaped: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]):
    super().__init__(message)
    self.missing, self.unexpected, self.misshaped = missing, unexpected, misshaped


def _listed(names: Sequence[str]) -> str:
  """Up to MAX_LISTED names, comma separated, with a count of the rest."""
  shown = ", ".join(names[:MAX_LISTED])
  return shown + (f", ... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def check_names_and_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                           source: str, target: str) -> None:
  """Raises WeightMismatchError unless `found` (name -> shape in the file) has exactly the names
  of `expected` with the same shapes; the message names `source` (the file) and `target`
  (the model) and lists missing, unexpected and mis-shaped names."""
  missing = [name for name in expected if name not in found]
  unexpected = [name for name in found if name not in expected]
  misshaped = {name: (tuple(found[name]), tuple(shape)) for name, shape in expected.items()
               if name in found and tuple(found[name]) != tuple(shape)}
  if not (missing or unexpected or misshaped):
    return
  lines = [f"{source}: weights do not match {target}:"]
  if missing:
    lines.append(f"  missing ({len(missing)}): {_listed(missing)}")
  if unexpected:
    lines.append(f"  unexpected ({len(unexpected)}): {_listed(unexpected)}")
  if misshaped:
    lines.append(f"  mis-shaped ({len(misshaped)}): " + _listed(
        [f"{name} is {list(got)} in the file, expected {list(want)}"
         for name, (got, want) in misshaped.items()]))
  raise WeightMismatchError("\n".join(lines), missing, unexpected, misshaped)
