"""Retrieval results as one self-contained HTML page: thumbnails inlined as base64 PNG.

One row per query, like `retrieval_grid`: the query, then its neighbours nearest first, each with
its path and score, framed green (correct) or red (wrong) when the labels are known.
"""
import base64
import html
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from jaxret.viz import retrieval_grid

_STYLE = ("body{font-family:sans-serif} .row{display:flex;gap:8px;margin:12px 0} "
          "figure{margin:0;width:__W__px;font-size:11px;word-break:break-all} "
          "img{border:4px solid #808080;display:block} figcaption{margin-top:2px}")


def inline_png(image: np.ndarray, thumb: int) -> str:
  """A `data:` URI of `image` (uint8 `[H, W, 3]`) shrunk to fit `thumb` x `thumb`."""
  buffer = io.BytesIO()
  Image.fromarray(retrieval_grid.thumbnail(image, thumb)).save(buffer, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(image: np.ndarray, caption: str, colour: str, thumb: int) -> str:
  return (f'<figure><img src="{inline_png(image, thumb)}" style="border-color:{colour}">'
          f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def retrieval_page(query_paths: Sequence[str], queries: Sequence[np.ndarray], neighbour_paths: Sequence[Sequence[str]],
                   neighbours: Sequence[Sequence[np.ndarray]], captions: Sequence[Sequence[str]], *,
                   correct: np.ndarray | None = None, thumb: int = 128, title: str = "jaxret search") -> str:
  """The HTML text. `neighbour_paths`, `neighbours`, `captions`: Q rows of k, nearest first;
  `correct`: bool `[Q, k]` or None when labels are unknown."""
  rows = []
  for q, (query_path, query) in enumerate(zip(query_paths, queries)):
    cells = [_cell(query, f"query: {query_path}", retrieval_grid.QUERY_COLOUR, thumb)]
    for j, (path, image, caption) in enumerate(zip(neighbour_paths[q], neighbours[q], captions[q])):
      colour = retrieval_grid.UNKNOWN_COLOUR
      if correct is not None:
        colour = retrieval_grid.CORRECT_COLOUR if correct[q][j] else retrieval_grid.WRONG_COLOUR
      cells.append(_cell(image, f"{j + 1}. {caption} {path}", colour, thumb))
    rows.append('<div class="row">' + "".join(cells) + "</div>")
  style = _STYLE.replace("__W__", str(thumb + 8))
  return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
          f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>\n"
          + "\n".join(rows) + "\n</body></html>\n")
