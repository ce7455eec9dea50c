"""Progress of long work for whoever watches it: a redrawn tqdm bar when stderr is a terminal;
where it is not (SLURM and CI logs, notebooks' captured stderr) one plain line every
`every_seconds` and one at the end, instead of a bar redrawn into the log."""
import sys
import time

import tqdm


class Progress:
  """`update(n, **postfix)` after each piece of work; `close()` (or a `with` block) at the end.
  Silent when `enabled` is false (processes other than 0 of a multi-host job)."""

  def __init__(self, total: int, description: str, unit: str, *, initial: int = 0, enabled: bool = True,
               every_seconds: float = 30.0):
    self.total, self.description, self.unit, self.done = total, description, unit, initial
    self.enabled, self.every_seconds = enabled, every_seconds
    self._bar = None
    if enabled and sys.stderr.isatty():
      self._bar = tqdm.tqdm(total=total, initial=initial, desc=description, unit=unit, dynamic_ncols=True)
    self._start = self._last_line = time.perf_counter()
    self._postfix, self._printed = {}, initial

  def update(self, n: int = 1, **postfix) -> None:
    self.done += n
    self._postfix.update(postfix)
    if self._bar is not None:
      self._bar.update(n)
      if postfix:
        self._bar.set_postfix(**postfix)
    elif self.enabled and time.perf_counter() - self._last_line >= self.every_seconds:
      self._line()

  def _line(self) -> None:
    self._last_line, self._printed = time.perf_counter(), self.done
    extra = "".join(f", {k} {v}" for k, v in self._postfix.items())
    print(f"{self.description}: {self.done} / {self.total} {self.unit} ({self._last_line - self._start:.0f} s{extra})",
          file=sys.stderr, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
    elif self.enabled and self._printed != self.done and time.perf_counter() - self._start >= self.every_seconds:
      self._line()  # work long enough for periodic lines ends with one

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
