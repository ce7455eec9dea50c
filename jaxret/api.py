"""The one-call API for notebooks and scripts, exported as `jaxret.train`, `jaxret.restore`,
`jaxret.evaluate` and `jaxret.embed`:

  results = jaxret.train(config, workdir)      # trains (or resumes) a run -> its test metrics
  run = jaxret.restore(workdir)                # the run's model chosen on validation
  metrics = jaxret.evaluate(run, split="val")  # re-scored on a split, or under another protocol
  vectors = jaxret.embed(run, images)          # uint8 images -> what search and evaluation use
"""
from collections.abc import Sequence

import ml_collections
import numpy as np

from jaxret import saved_run
from jaxret.data import datasets
from jaxret.eval import evaluator
from jaxret.training import config as config_lib, loop
from jaxret.user_errors import InputError


def train(config: ml_collections.ConfigDict, workdir: str, *, devices=None,
          start_over: bool = False) -> dict[str, float]:
  """Trains `config.method` on `config.dataset` in `workdir` (resuming from its last checkpoint;
  `start_over` deletes the run there first) -> the test metrics of the model chosen on validation
  (`jaxret.training.loop.train`)."""
  return loop.train(config, workdir, devices=devices, start_over=start_over)


def restore(workdir: str, checkpoint: str = "best") -> saved_run.SavedRun:
  """The run in `workdir`: its config and the model of its "best" validation checkpoint (or its
  "latest"), replicated on all devices (`jaxret.saved_run.restore`)."""
  return saved_run.restore(workdir, checkpoint)


def evaluate(run: saved_run.SavedRun, split: str = "test", *, protocol: str = "", metric: str = "",
             **eval_settings) -> dict[str, float]:
  """`run`'s model scored on `split` ("test" or "val") of its dataset, under its own
  `config.eval` or the given `protocol` ("retrieval", "reid", "hashing", "classification"),
  `metric` ("cosine", "euclidean") and other `config.eval` keys (`rerank=True`,
  `query_expansion=True`, `fprs=(1e-3,)`, ...)."""
  config = ml_collections.ConfigDict(run.config.to_dict())
  config.eval.protocol = protocol or config.eval.protocol
  config.eval.metric = metric or config.eval.metric
  unknown = sorted(set(eval_settings) - set(config.eval))
  if unknown:
    raise InputError(f"evaluate: {unknown} are not config.eval keys; expected some of {sorted(config.eval)}")
  config.eval.update(eval_settings)
  config.lock()
  config_lib.validate_evaluation(config)
  data = datasets.load(config)
  queries, gallery = {"test": (data.test, data.test_gallery), "val": (data.val, data.val_gallery)}.get(split, (None,) * 2)
  if queries is None:
    raise ValueError(f"split={split!r}: expected 'test' or 'val' (and a dataset with that split); "
                     f"{config.dataset} under the {config.eval.protocol} protocol has "
                     f"{['test'] + (['val'] if data.val is not None else [])}")
  embedder = evaluator.Embedder(run.method, config, run.mesh)
  return evaluator.make_evaluator(queries, gallery, embedder, data.train_classes).run(run.params, run.method_state)


def embed(run: saved_run.SavedRun, images: Sequence[np.ndarray]) -> np.ndarray:
  """uint8 images `[H, W, 3]` (any sizes: resized as evaluation resizes them) -> `run`'s
  `embed_fn` outputs `[N, D]` float32 (hashing runs: the relaxed codes, whose signs are the bits)."""
  source = [{"image": np.asarray(image, np.uint8)} for image in images]
  return evaluator.Embedder(run.method, run.config, run.mesh)(
      source, run.params, run.method_state, fields=(), attributes=False)["embedding"]
