"""Retrieval grid: one row per query, the query then its k nearest gallery images, as a PNG.

Each thumbnail sits in a cell of `thumb` x `thumb` pixels with a caption strip below it (the
neighbour's score: similarity or distance). When the labels are known, a correct neighbour is
framed green and a wrong one red; the query is framed blue. The figure is sized in pixels, so a
grid of Q queries and k neighbours is exactly `grid_size(Q, k, thumb)`.
"""
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

CAPTION_PX = 24  # caption strip under each thumbnail
PAD_PX = 6  # border around each cell
DPI = 100
QUERY_COLOUR, CORRECT_COLOUR, WRONG_COLOUR, UNKNOWN_COLOUR = "#1f5fd6", "#1a9e2c", "#d62020", "#808080"


def grid_size(num_queries: int, k: int, thumb: int) -> tuple[int, int]:
  """(width, height) in pixels of the grid of `num_queries` rows of 1 + `k` cells."""
  return (1 + k) * (thumb + 2 * PAD_PX), num_queries * (thumb + CAPTION_PX + 2 * PAD_PX)


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 `[H, W, 3]` -> uint8 `[h, w, 3]` with max(h, w) <= size, aspect ratio kept."""
  picture = Image.fromarray(np.asarray(image, np.uint8))
  picture.thumbnail((size, size))
  return np.asarray(picture)


def retrieval_grid(queries: Sequence[np.ndarray], neighbours: Sequence[Sequence[np.ndarray]], scores: np.ndarray, *,
                   correct: np.ndarray | None = None, score_format: str = "{:.3f}",
                   thumb: int = 96) -> Figure:
  """The grid as a matplotlib figure (on its own Agg canvas: no pyplot state, the notebook's
  backend untouched; a notebook shows it inline).

  Args:
    queries: Q images, uint8 `[H, W, 3]` (any size).
    neighbours: Q rows of k images each, nearest first.
    scores: `[Q, k]` numbers written under the neighbours with `score_format`.
    correct: bool `[Q, k]` (neighbour has the query's label), or None when labels are unknown.
    thumb: thumbnail side in pixels.
  """
  scores = np.asarray(scores)
  num_queries, k = scores.shape
  if len(queries) != num_queries or any(len(row) != k for row in neighbours) or len(neighbours) != num_queries:
    raise ValueError(f"retrieval_grid: scores have shape {scores.shape} (queries, k), but got {len(queries)} "
                     f"queries and neighbour rows of lengths {[len(row) for row in neighbours]}")
  if correct is not None and np.shape(correct) != scores.shape:
    raise ValueError(f"retrieval_grid: correct has shape {np.shape(correct)}, expected {scores.shape} like scores")
  width, height = grid_size(num_queries, k, thumb)
  figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
  FigureCanvasAgg(figure)
  cell_w, cell_h = thumb + 2 * PAD_PX, thumb + CAPTION_PX + 2 * PAD_PX
  for row in range(num_queries):
    images = [queries[row], *neighbours[row]]
    for column, image in enumerate(images):
      left = column * cell_w + PAD_PX
      bottom = height - (row + 1) * cell_h + PAD_PX + CAPTION_PX
      axes = figure.add_axes((left / width, bottom / height, thumb / width, thumb / height))
      axes.imshow(thumbnail(image, thumb), interpolation="nearest")
      axes.set_xticks([])
      axes.set_yticks([])
      if column == 0:
        colour, caption = QUERY_COLOUR, "query"
      else:
        known = correct is not None
        colour = (CORRECT_COLOUR if correct[row, column - 1] else WRONG_COLOUR) if known else UNKNOWN_COLOUR
        caption = score_format.format(scores[row, column - 1])
      for spine in axes.spines.values():
        spine.set_color(colour)
        spine.set_linewidth(4 if column == 0 or correct is not None else 1)
      axes.set_xlabel(caption, fontsize=8, labelpad=2)
  return figure


def save_retrieval_grid(path: str, queries: Sequence[np.ndarray], neighbours: Sequence[Sequence[np.ndarray]],
                        scores: np.ndarray, **kwargs) -> None:
  """Writes `retrieval_grid(queries, neighbours, scores, **kwargs)` to the PNG `path`."""
  retrieval_grid(queries, neighbours, scores, **kwargs).savefig(path, dpi=DPI, format="png")
