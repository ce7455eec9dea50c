"""A2-Net per-bit galleries (papers/a2net.txt Sec. 4.5, Figure 4): for each chosen bit, a row of the
gallery images whose hash code has that bit on (+1), most confident first (largest real-valued code
`tanh(W x)[bit]`, `jaxret.methods.a2net.images_with_bit_on`), titled with that value. If a bit stands
for an attribute, its row shows it.

`gallery_codes` embeds a gallery source with an A2-Net run (`jaxret.eval.evaluator.Embedder`);
`bit_gallery_panels` picks and arranges the images from the codes; `write_bit_gallery` writes the PNG.
"""
from collections.abc import Sequence
from typing import Any

import grain
import ml_collections
import numpy as np

from jaxret.data import pipeline
from jaxret.eval import evaluator
from jaxret.methods import a2net
from jaxret import mesh as mesh_lib
from jaxret.viz import image_grid


def bit_gallery_panels(relaxed: np.ndarray, images: Any, bits: Sequence[int], per_bit: int):
  """relaxed codes `[N, k]`, N uint8 images `[H, W, 3]` (an array `[N, H, W, 3]` or any sequence read
  lazily, only the shown images are; image i coded by `relaxed[i]`) -> (panels `[len(bits), per_bit, H,
  W, 3]` in [0, 1], NaN where a bit is on in fewer than `per_bit` images; row titles "bit b (n on)";
  panel titles: each image's code value)."""
  relaxed = np.asarray(relaxed)
  if relaxed.ndim != 2 or len(relaxed) != len(images) or np.ndim(images[0]) != 3:
    raise ValueError(f"bit_gallery_panels: codes of shape {relaxed.shape} for {len(images)} images of shape "
                     f"{np.shape(images[0])}; expected codes [N, k] and N images [H, W, 3], one code per image")
  if per_bit < 1 or not len(bits):
    raise ValueError(f"bit_gallery_panels: bits={tuple(bits)}, per_bit={per_bit}; expected at least one bit and "
                     "per_bit >= 1")
  panels = np.full((len(bits), per_bit, *np.shape(images[0])), np.nan, np.float32)
  row_titles, panel_titles = [], []
  for row, bit in enumerate(bits):  # a few rows; each one a vectorised selection
    chosen = a2net.images_with_bit_on(relaxed, bit, per_bit)
    if len(chosen):
      panels[row, :len(chosen)] = np.stack([images[i] for i in chosen]) / 255.0
    row_titles.append(f"bit {bit} ({int(np.sum(relaxed[:, bit] >= 0))} on)")
    panel_titles.append([f"{relaxed[i, bit]:+.2f}" for i in chosen] + [""] * (per_bit - len(chosen)))
  return panels, row_titles, panel_titles


def gallery_codes(params, method_state, config: ml_collections.ConfigDict, gallery: Any) -> np.ndarray:
  """An A2-Net run's relaxed codes `tanh(W x)` `[N, k]` of every example of `gallery` (a source: `len`,
  `[i] -> {"image", ...}`), in order, embedded as the evaluators do (`evaluator.Embedder`)."""
  if config.method != "a2net":
    raise ValueError(f"gallery_codes: a run of config.method={config.method!r}; expected an A2-Net run "
                     "(config.method='a2net'): only hash codes have bits")
  embedder = evaluator.Embedder(a2net.METHOD, config, mesh_lib.make_mesh())
  return embedder(gallery, params, method_state, fields=(), attributes=False)["embedding"]


def write_bit_gallery(relaxed: np.ndarray, gallery: Any, config: ml_collections.ConfigDict, path: str, *,
                      bits: Sequence[int] = (0, 1, 2, 3), per_bit: int = 8) -> str:
  """The per-bit gallery (`bit_gallery_panels`) of `gallery`'s relaxed codes `[N, k]` (`gallery_codes`, or
  saved embeddings in source order) as a PNG at `path` -> `path`. Only the shown images are read, at
  the run's input size (`pipeline.eval_transform(config)`)."""
  transform = pipeline.eval_transform(config)
  images = grain.MapDataset.source(gallery).map(lambda example: transform(np.asarray(example["image"])))  # lazy
  panels, row_titles, panel_titles = bit_gallery_panels(relaxed, images, bits, per_bit)
  return image_grid.write_grid(path, panels, row_titles=row_titles, panel_titles=panel_titles)
