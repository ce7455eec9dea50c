"""A trained run's embedding function for serving: serialised StableHLO (`jax.export`).

`export_run(run, out_path)` writes `out_path`, the serialised `jax.export.Exported` of

  uint8 images [b, H, W, 3] -> float32 embeddings [b, D]

with a symbolic batch `b` (any b >= 1 runs without re-exporting) and H, W the run's evaluation
input size (`jaxret.data.pipeline.image_shape`). It does what evaluation does to an image already
resized to H x W: `image / 255` and the ImageNet mean / std standardisation of
`jaxret.data.pipeline.normalize` (looked up per pixel value in a table that function computed,
so the inputs are evaluation's bit for bit), then the run's `embed_fn` with its parameters and method state
baked in as constants. Hashing runs (`Protocol.hash_codes`) give the real-valued codes, whose
signs (>= 0 -> bit 1) are the hash bits. Beside it, `out_path + ".json"` holds the metadata
(`METADATA_SUFFIX`): input shape, dtype, output dim, method, metric, hash_codes, checkpoint, the
lowering platforms and the jax version.

`jaxret.exported_embedding.ExportedEmbedding` loads both without the training code.
"""
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxret import protocols, saved_run
from jaxret.data import pipeline

FORMAT = "jaxret.exported_embedding"
FORMAT_VERSION = 1
METADATA_SUFFIX = ".json"
# Lowered for these (and this machine's platform) by default: `export_for_serving`.
PLATFORMS = ("cpu", "cuda")


def normalisation_table() -> np.ndarray:
  """float32 `[256, 3]`: `pipeline.normalize` of each uint8 value in each channel. Looking pixels
  up in it gives evaluation's inputs bit for bit, where arithmetic would not (XLA multiplies by
  the reciprocal of 255 and of the standard deviation, 1 ulp off for some values)."""
  return pipeline.normalize(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))


def serving_function(run: saved_run.SavedRun):
  """uint8 `[b, H, W, 3]` -> float32 `[b, D]`: evaluation's normalisation (`normalisation_table`)
  then `run`'s `embed_fn`, its parameters and method state closed over (host copies: they become
  the program's constants)."""
  params, method_state = jax.device_get((run.params, run.method_state))
  table = normalisation_table().reshape(-1)  # [256 * 3]: value v of channel c at 3 v + c
  method, config = run.method, run.config

  def embed(images: jax.Array) -> jax.Array:
    normalised = jnp.take(table, images.astype(jnp.int32) * 3 + jnp.arange(3, dtype=jnp.int32))
    return method.embed_fn(params, method_state, normalised, config).astype(jnp.float32)

  return embed


def input_spec(run: saved_run.SavedRun) -> jax.ShapeDtypeStruct:
  """uint8 `[b, H, W, 3]`, `b` symbolic."""
  height, width = pipeline.image_shape(run.config)
  (batch,) = jax.export.symbolic_shape("b")
  return jax.ShapeDtypeStruct((batch, height, width, 3), jnp.uint8)


def export(run: saved_run.SavedRun, platforms: Sequence[str] = PLATFORMS) -> jax.export.Exported:
  """The `jax.export.Exported` of `serving_function(run)`, lowered for `platforms`."""
  return jax.export.export(jax.jit(serving_function(run)), platforms=tuple(platforms))(input_spec(run))


def export_for_serving(run: saved_run.SavedRun, platforms: Sequence[str] | None = None) -> jax.export.Exported:
  """`export(run, platforms)`; by default for `PLATFORMS` and this machine's platform
  (`jax.export.default_export_platform`; plain StableHLO lowers for cuda on a CPU-only machine
  too), or, when one of them has no lowering rule for an op, for this machine's platform alone."""
  if platforms is not None:
    return export(run, platforms)
  native = jax.export.default_export_platform()
  try:
    return export(run, tuple(dict.fromkeys([*PLATFORMS, native])))
  except Exception:  # pylint: disable=broad-except  (a platform without a lowering rule; retried alone below)
    return export(run, (native,))


def metadata(run: saved_run.SavedRun, exported: jax.export.Exported) -> dict[str, Any]:
  """What a server needs besides the program: the `.json` written beside it."""
  height, width = pipeline.image_shape(run.config)
  return {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "input_shape": [height, width, 3],  # per image; the batch is the leading, symbolic axis
      "input_dtype": "uint8",
      "output_dim": int(exported.out_avals[0].shape[-1]),
      "output_dtype": "float32",
      "method": run.config.method,
      "metric": run.config.eval.metric,
      "hash_codes": bool(protocols.get_protocol(run.config).hash_codes),
      "checkpoint": run.checkpoint,
      "checkpoint_step": run.step,
      "config_fingerprint": saved_run.fingerprint(run.config),
      "workdir": run.workdir,
      "platforms": list(exported.platforms),
      "jax_version": jax.__version__,
  }


def _write_atomically(path: str, data: bytes) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def export_run(run: saved_run.SavedRun, out_path: str,
               platforms: Sequence[str] | None = None) -> dict[str, Any]:
  """Writes the serialised embedding program of `run` to `out_path` and its metadata to
  `out_path + ".json"` (each atomically: a temporary file, then `os.replace`) -> the metadata,
  plus "bytes" (the program's size). `platforms`: see `export_for_serving`.

  Raises:
    ValueError: naming `out_path` when its folder does not exist.
  """
  folder = os.path.dirname(os.path.abspath(out_path))
  if not os.path.isdir(folder):
    raise ValueError(f"export path {out_path!r}: its folder {folder!r} does not exist")
  exported = export_for_serving(run, platforms)
  blob = bytes(exported.serialize())
  info = metadata(run, exported)
  _write_atomically(out_path, blob)
  _write_atomically(out_path + METADATA_SUFFIX, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
  return {**info, "bytes": len(blob)}
