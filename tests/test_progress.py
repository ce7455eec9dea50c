"""jaxret.progress: plain periodic lines where stderr is not a terminal, a bar where it is, nothing
on processes that do not report."""
import io
import sys

from jaxret.progress import Progress


def test_without_a_terminal_it_writes_plain_lines_with_the_counts(capsys):
  with Progress(10, "embedding", "images", every_seconds=0.0) as progress:
    progress.update(4)
    progress.update(6, loss="0.25")
  lines = capsys.readouterr().err.splitlines()
  assert [line.split(" (")[0] for line in lines] == ["embedding: 4 / 10 images", "embedding: 10 / 10 images"]
  assert lines[1].endswith(", loss 0.25)") and "\r" not in "".join(lines)


def test_short_work_writes_nothing_and_a_disabled_one_never(capsys):
  with Progress(10, "train", "steps") as progress:
    progress.update(10)
  with Progress(10, "train", "steps", enabled=False, every_seconds=0.0) as progress:
    progress.update(10)
  assert capsys.readouterr().err == ""


def test_on_a_terminal_it_draws_a_bar(monkeypatch):
  terminal = io.StringIO()
  terminal.isatty = lambda: True
  monkeypatch.setattr(sys, "stderr", terminal)
  with Progress(8, "train", "steps", every_seconds=0.0) as progress:
    progress.update(8, loss="1.0")
  assert "\r" in terminal.getvalue() and "8/8" in terminal.getvalue() and "loss=1.0" in terminal.getvalue()
