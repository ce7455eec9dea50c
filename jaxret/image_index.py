"""A searchable index of an image folder: what a trained run's `embed_fn` makes of each file.

Float methods store their embeddings float32 `[N, D]` (searched with the run's
`config.eval.metric`); hashing methods (`config.eval.protocol == "hashing"`) store the packed
hash codes uint8 `[N, ceil(bits / 8)]` of `jaxret.eval.packed_codes` (searched by Hamming
distance), with the sign convention of the hashing evaluator (embedding >= 0 -> bit 1).
The `.npz` holds `vectors`, `paths` (relative to the folder) and the metadata fields of
`ImageIndex`, so a search can check that its query is embedded by the same model.
"""
import dataclasses
import os
import zipfile
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxret.data import image_folder, pipeline
from jaxret.eval import evaluator, knn, packed_codes
from jaxret.ops.sign_codes import sign_codes
from jaxret.progress import Progress
from jaxret import protocols, saved_run

FLOAT, PACKED_BITS = "float", "packed_bits"
_METADATA = ("method", "kind", "dim", "metric", "config_fingerprint", "workdir", "checkpoint", "checkpoint_step",
             "image_root")


@dataclasses.dataclass(frozen=True)
class ImageIndex:
  """vectors: float32 `[N, D]` (kind "float") or packed codes uint8 `[N, ceil(dim / 8)]` (kind
  "packed_bits"); paths: str `[N]` relative to `image_root`; dim: D, or the number of bits; metric:
  the `jaxret.eval.knn` metric to search with; checkpoint: "latest" or "best", the run's checkpoint
  that embedded the images, at `checkpoint_step`."""
  vectors: np.ndarray
  paths: np.ndarray
  method: str
  kind: str
  dim: int
  metric: str
  config_fingerprint: str
  workdir: str
  checkpoint: str
  checkpoint_step: int
  image_root: str


def kind_and_metric(run: saved_run.SavedRun) -> tuple[str, str]:
  """("packed_bits", "hamming") for hashing runs, else ("float", the run's `config.eval.metric`)."""
  if protocols.get_protocol(run.config).hash_codes:
    return PACKED_BITS, "hamming"
  return FLOAT, run.config.eval.metric


def embedding_dim(run: saved_run.SavedRun) -> int:
  """The width D of `run`'s `embed_fn` output (the number of bits for hashing runs), from shapes only."""
  height, width = pipeline.image_shape(run.config)
  images = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
  shape = jax.eval_shape(lambda p, s, x: run.method.embed_fn(p, s, x, run.config), run.params, run.method_state, images)
  return int(shape.shape[-1])


def embed_files(run: saved_run.SavedRun, root: str, paths: Sequence[str], *,
                progress: bool = True) -> tuple[np.ndarray, int]:
  """Embeds the images `root/paths[i]` with `run`'s model and evaluation preprocessing, one
  `config.eval.batch_size` batch at a time under a progress bar -> (`ImageIndex.vectors`, dim:
  the embedding width D, or the number of bits)."""
  embed = evaluator.Embedder(run.method, run.config, run.mesh)
  batch = run.config.eval.batch_size
  parts = []
  with Progress(len(paths), "embedding", "images", enabled=progress) as bar:
    for start in range(0, len(paths), batch):
      files = image_folder.ImageFiles(root, paths[start:start + batch])
      parts.append(embed(files, run.params, run.method_state, fields=(), attributes=False)["embedding"])
      bar.update(len(files))
  embeddings = np.concatenate(parts).astype(np.float32)
  if kind_and_metric(run)[0] == PACKED_BITS:
    return np.asarray(packed_codes.pack_codes(sign_codes(embeddings))), embeddings.shape[1]
  return embeddings, embeddings.shape[1]


def build(run: saved_run.SavedRun, image_root: str, *, progress: bool = True) -> ImageIndex:
  """Embeds every image under `image_root` (`image_folder.list_images`) with `run`."""
  paths = image_folder.list_images(image_root)
  vectors, dim = embed_files(run, image_root, paths, progress=progress)
  kind, metric = kind_and_metric(run)
  return ImageIndex(vectors=vectors, paths=np.asarray(paths), method=run.config.method, kind=kind, dim=dim,
                    metric=metric, config_fingerprint=saved_run.fingerprint(run.config), workdir=run.workdir,
                    checkpoint=run.checkpoint, checkpoint_step=run.step, image_root=os.path.abspath(image_root))


def save(index: ImageIndex, path: str) -> None:
  """Writes `index` to the .npz `path`, that name exactly (no pickled objects)."""
  with open(path, "wb") as f:
    metadata = {name: np.asarray(getattr(index, name)) for name in _METADATA}
    np.savez(f, vectors=index.vectors, paths=index.paths, **metadata)


def load(path: str) -> ImageIndex:
  """Reads an index .npz; ValueError naming `path` when it is missing, unreadable or lacks a field."""
  if not os.path.isfile(path):
    raise ValueError(f"index file {path!r} does not exist: expected an .npz written by launch.embed")
  try:
    with np.load(path, allow_pickle=False) as npz:
      fields = {name: npz[name] for name in npz.files}
  except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f"index file {path!r} is not a readable .npz: {e}") from None
  missing = [name for name in ("vectors", "paths", *_METADATA) if name not in fields]
  if missing:
    raise ValueError(f"index file {path!r} lacks {', '.join(missing)}: expected an .npz written by launch.embed")
  scalars = {name: fields[name].item() for name in _METADATA}
  return ImageIndex(vectors=fields["vectors"], paths=fields["paths"], **scalars)


def check_compatible(index: ImageIndex, index_path: str, run: saved_run.SavedRun, dim: int) -> list[str]:
  """Raises ValueError naming both sides when queries embedded by `run` (width `dim`) cannot be
  searched in `index` (read from `index_path`): another method, embedding kind, dimension or
  metric. Returns warnings (another workdir, config or checkpoint step: comparable vectors, but
  not the index's model)."""
  kind, metric = kind_and_metric(run)
  ours = {"method": run.config.method, "kind": kind, "dim": int(dim), "metric": metric}
  theirs = {name: getattr(index, name) for name in ours}
  if ours != theirs:
    raise ValueError(f"index {index_path!r} was built by method={theirs['method']!r} kind={theirs['kind']!r} "
                     f"dim={theirs['dim']} metric={theirs['metric']!r} (workdir {index.workdir}), but the query "
                     f"run {run.workdir} embeds with method={ours['method']!r} kind={ours['kind']!r} "
                     f"dim={ours['dim']} metric={ours['metric']!r}: embed the folder again with this run, or "
                     f"search with --workdir {index.workdir}")
  warnings = []
  if os.path.abspath(index.workdir) != run.workdir:
    warnings.append(f"the index was built by the run in {index.workdir}, the query is embedded by {run.workdir}")
  if index.config_fingerprint != saved_run.fingerprint(run.config):
    warnings.append(f"config fingerprints differ: index {index.config_fingerprint}, "
                    f"query run {saved_run.fingerprint(run.config)}")
  if index.checkpoint_step != run.step:
    warnings.append(f"checkpoint steps differ: index {index.checkpoint_step}, query run {run.step}")
  return warnings


def search(index: ImageIndex, queries: np.ndarray, *, k: int, chunk: int = 4096) -> knn.Neighbours:
  """The `k` nearest index items of each of `queries` (vectors like `index.vectors`) by the
  evaluation k-NN (`jaxret.eval.knn`, `index.metric`), scanning the index `chunk` items at a time;
  ties go to the smaller index position."""
  return knn.nearest_neighbours(queries, index.vectors, k=k, metric=index.metric, block_size=chunk)


def distances(scores: np.ndarray, metric: str) -> tuple[np.ndarray, str]:
  """k-NN scores -> (the values people read, their name): cosine similarity, Euclidean distance
  (the square root of minus the score) or Hamming distance (minus the score)."""
  if metric == "cosine":
    return scores, "cosine similarity"
  if metric == "euclidean":
    return np.sqrt(np.maximum(-scores, 0.0)) + 0.0, "euclidean distance"  # + 0.0: no -0
  return -scores + 0.0, "hamming distance"
