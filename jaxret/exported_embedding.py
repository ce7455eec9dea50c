"""Serving a run's embedding exported by `jaxret.export` (`python -m launch.export`), with JAX alone:
no jaxret training, method or Flax model code is imported.

  model = ExportedEmbedding.load("model.stablehlo")   # and model.stablehlo.json beside it
  vectors = model(images)  # uint8 [n, H, W, 3], already resized -> float32 [n, D]

Images must already have the run's evaluation size, `model.metadata["input_shape"]` (resize them
as `jaxret.data.pipeline.eval_transform` does); the program normalises them. With
`metadata["hash_codes"]` the outputs are relaxed hash codes: their signs (>= 0 -> 1) are the bits.
Compare vectors with `metadata["metric"]` ("cosine" or "euclidean"), or by Hamming distance.
"""
import json
import os
from typing import Any

import jax
import jax.export  # pylint: disable=unused-import  (the submodule, on jax versions that do not import it)
import numpy as np

METADATA_SUFFIX = ".json"  # as `jaxret.export.METADATA_SUFFIX`


class ExportedEmbedding:
  """A deserialised `jax.export.Exported` embedding program and its metadata (`metadata`: the
  `.json` written beside it; `input_shape`: (H, W, 3); `dim`: D)."""

  def __init__(self, exported: jax.export.Exported, metadata: dict[str, Any], path: str = "<memory>"):
    self.exported = exported
    self.metadata = metadata
    self.path = path
    (aval,) = exported.in_avals
    self.input_shape = tuple(int(d) for d in aval.shape[1:])
    self.dim = int(exported.out_avals[0].shape[-1])
    if aval.dtype != np.uint8 or len(self.input_shape) != 3 or self.input_shape[-1] != 3:
      raise ValueError(f"{path!r} takes {aval.dtype} [b, {', '.join(map(str, self.input_shape))}]: expected an "
                       f"embedding program exported by jaxret.export (uint8 [b, H, W, 3])")
    self._call = jax.jit(exported.call)  # compiled once per batch size

  @classmethod
  def load(cls, path: str) -> "ExportedEmbedding":
    """Reads the program `path` and its metadata `path + ".json"`; ValueError naming the file
    that is missing or unreadable."""
    meta_path = path + METADATA_SUFFIX
    for name, what in ((path, "the serialised program"), (meta_path, "its metadata")):
      if not os.path.isfile(name):
        raise ValueError(f"{name!r} does not exist: expected {what} written by launch.export (jaxret.export)")
    try:
      with open(path, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    except ImportError:  # flatbuffers, which jax.export's serialisation needs: a missing package, not a bad file
      raise
    except Exception as e:  # pylint: disable=broad-except  (a truncated or foreign file)
      raise ValueError(f"{path!r} is not a readable jax.export program: {type(e).__name__}: {e}") from None
    try:
      with open(meta_path, encoding="utf-8") as f:
        metadata = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      raise ValueError(f"{meta_path!r} is not readable JSON metadata: {e}") from None
    if not isinstance(metadata, dict):
      raise ValueError(f"{meta_path!r} holds {type(metadata).__name__}: expected a JSON object")
    return cls(exported, metadata, path)

  def __call__(self, images: np.ndarray) -> np.ndarray:
    """uint8 images `[n, H, W, 3]` (n >= 0) -> float32 embeddings `[n, D]`; ValueError naming
    the expected shape for another shape or dtype."""
    images = np.asarray(images)
    expected = f"uint8 [n, {', '.join(map(str, self.input_shape))}]"
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
      raise ValueError(f"images of shape {tuple(images.shape)} and dtype {images.dtype}: the embedding "
                       f"{self.path!r} expects {expected} (resized like the run's evaluation images)")
    if not len(images):  # a symbolic dimension is >= 1
      return np.zeros((0, self.dim), np.float32)
    return np.asarray(self._call(images), np.float32)
