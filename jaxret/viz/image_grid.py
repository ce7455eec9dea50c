"""A grid of image panels written as one PNG (matplotlib's Agg canvas, no pyplot state): the figure
behind jaxret.viz's attention overlays and hash-bit galleries. Also the pixel-level pieces the
panels are made of: model inputs back to displayable colours, boxes drawn into images."""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxret.data import pipeline

PANEL_INCHES = 1.5  # each panel's side
DPI = 100  # so a PNG is 150 x 150 pixels per panel


def grid_pixels(rows: int, columns: int) -> tuple[int, int]:
  """(width, height) in pixels of the PNG `write_grid` writes for `rows` x `columns` panels."""
  return round(columns * PANEL_INCHES * DPI), round(rows * PANEL_INCHES * DPI)


def check_images(images: np.ndarray, shape: tuple[int, int] | None, what: str) -> np.ndarray:
  """`images` as uint8 `[B, H, W, 3]`, B >= 1, with (H, W) = `shape` (any size for None); a ValueError
  naming `what` otherwise."""
  images = np.asarray(images)
  if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images)
      or (shape is not None and images.shape[1:3] != tuple(shape))):
    size = "H, W" if shape is None else f"{shape[0]}, {shape[1]}"
    raise ValueError(f"{what}: images of dtype {images.dtype} and shape {images.shape}; expected uint8 "
                     f"[B, {size}, 3], B >= 1 (the run's input size: resize them with "
                     "jaxret.data.pipeline.eval_transform(config))")
  return images


def to_model_input(images: np.ndarray) -> np.ndarray:
  """uint8 `[B, H, W, 3]` -> the normalised float32 input the model was trained on."""
  return pipeline.normalize(images)


def to_display(images: np.ndarray) -> np.ndarray:
  """Normalised model inputs `[..., 3]` (`to_model_input`'s output, or crops of it) -> colours in [0, 1]."""
  return np.clip(np.asarray(images) * pipeline.IMAGENET_STD + pipeline.IMAGENET_MEAN, 0.0, 1.0)


def draw_boxes(images: np.ndarray, boxes: np.ndarray, colours: np.ndarray, thickness: int = 1) -> np.ndarray:
  """Box outlines drawn into images: images `[B, H, W, 3]` in [0, 1], boxes `[B, N, 4]` (top, left,
  bottom, right in pixels, bottom / right exclusive), colours `[N, 3]` or `[B, N, 3]` -> `[B, H, W, 3]`
  (later boxes on top). Pixel (y, x) is on a box's outline when it lies inside the box but not `thickness` pixels in."""
  b, h, w, _ = images.shape
  boxes = np.asarray(boxes, np.float32)
  y = np.arange(h, dtype=np.float32)[None, None, :, None] + 0.5  # pixel centres
  x = np.arange(w, dtype=np.float32)[None, None, None, :] + 0.5
  top, left, bottom, right = (boxes[..., i, None, None] for i in range(4))  # [B, N, 1, 1]
  inside = (y >= top) & (y < bottom) & (x >= left) & (x < right)
  t = thickness
  inner = (y >= top + t) & (y < bottom - t) & (x >= left + t) & (x < right - t)
  outline = inside & ~inner  # [B, N, H, W]
  last = np.where(outline.any(axis=1), outline.shape[1] - 1 - np.argmax(outline[:, ::-1], axis=1), -1)  # [B, H, W]
  colours = np.broadcast_to(np.asarray(colours, np.float32), (b, boxes.shape[1], 3))
  colour = colours[np.arange(b)[:, None, None], np.maximum(last, 0)]  # [B, H, W, 3]
  return np.where((last >= 0)[..., None], colour, images)


def write_grid(path: str, panels: np.ndarray, *, column_titles=None, row_titles=None, panel_titles=None) -> str:
  """Writes `panels` float `[R, C, H, W, 3]` in [0, 1] (a panel of NaNs is left empty) as a PNG of
  `grid_pixels(R, C)` at `path` (folders created) -> `path`. Titles: `column_titles` (C strings, above
  the first row), `row_titles` (R, left of each row), `panel_titles` (R x C, above each panel, over
  the column titles; None or "" for none)."""
  panels = np.asarray(panels, np.float32)
  if panels.ndim != 5 or panels.shape[-1] != 3:
    raise ValueError(f"write_grid: panels of shape {panels.shape}; expected [rows, columns, H, W, 3]")
  rows, columns = panels.shape[:2]
  figure = Figure(figsize=(columns * PANEL_INCHES, rows * PANEL_INCHES), dpi=DPI)
  FigureCanvasAgg(figure)
  axes = figure.subplots(rows, columns, squeeze=False)
  figure.subplots_adjust(left=0.08 if row_titles is not None else 0.01, right=0.99, bottom=0.01, top=0.9,
                         wspace=0.05, hspace=0.25)
  for r in range(rows):
    for c in range(columns):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      if np.isnan(panels[r, c]).any():
        ax.set_frame_on(False)  # an empty cell; its row title stays
      else:
        ax.imshow(np.clip(panels[r, c], 0.0, 1.0), interpolation="nearest")
      title = panel_titles[r][c] if panel_titles is not None else None
      if not title and r == 0 and column_titles is not None:
        title = column_titles[c]
      if title:
        ax.set_title(title, fontsize=7)
      if c == 0 and row_titles is not None:
        ax.set_ylabel(row_titles[r], fontsize=7)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, format="png")
  return path
