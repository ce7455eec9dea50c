"""A trained run read back from its workdir: the config it trained with and a checkpointed model.

The train loop writes `<workdir>/config.json` (the config with the dataset's label spaces filled
in, `save_config`); `restore` rebuilds the method from it and reads the parameters and method
state of the latest checkpoint (`<workdir>/checkpoints`) or of the best model (`<workdir>/best`),
so tools (embedding, search) use exactly the model the run trained.
"""
import dataclasses
import hashlib
import json
import os
import types
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from jaxret import mesh as mesh_lib, methods
from jaxret.data import pipeline
from jaxret.training import config as config_lib, optimizer, state as state_lib
from jaxret.user_errors import InputError

CONFIG_FILE = "config.json"


def save_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes `config` to `<workdir>/config.json` (atomically)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json(indent=2, sort_keys=True))
  os.replace(path + ".tmp", path)


def _tuples(value: Any) -> Any:
  """JSON lists back to the tuples configs hold; dicts recursively."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The locked config saved in `<workdir>/config.json` (keys added to `base_config` since, at their
  defaults); ValueError naming the path when absent."""
  if not os.path.isdir(workdir):
    raise InputError(f"workdir {workdir!r} does not exist: expected the --workdir of a training run")
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise InputError(f"{path} does not exist: expected the config a run saves when it starts "
                     f"(runs trained before config.json was saved must be trained again)")
  with open(path) as f:
    try:
      values = json.load(f)
    except json.JSONDecodeError as e:
      raise InputError(f"{path} is not valid JSON: {e}") from None
  config = ml_collections.ConfigDict(_with_defaults(_tuples(values), config_lib.base_config().to_dict()))
  config.lock()
  return config


def _with_defaults(values: dict, defaults: dict) -> dict:
  """`values` with the keys of `defaults` it lacks (settings added since the run was saved, at
  their defaults), recursively."""
  out = dict(values)
  for key, default in defaults.items():
    if key not in out:
      out[key] = default
    elif isinstance(out[key], dict) and isinstance(default, dict):
      out[key] = _with_defaults(out[key], default)
  return out


def fingerprint(config: ml_collections.ConfigDict) -> str:
  """12 hex digits identifying `config`'s values (sha256 of its sorted JSON)."""
  return hashlib.sha256(config.to_json(sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class SavedRun:
  """A run's model: `params` and `method_state` replicated on `mesh`, from checkpoint `step` of
  the run's `checkpoint` ("latest" or "best") checkpoints."""
  workdir: str
  config: ml_collections.ConfigDict
  method: types.ModuleType
  mesh: jax.sharding.Mesh
  params: Any
  method_state: Any
  step: int
  checkpoint: str


def restore(workdir: str, which: str = "latest") -> SavedRun:
  """Reads the run in `workdir`: its config and the model of its latest checkpoint
  (`which="latest"`) or of its best validation model (`which="best"`).

  Raises:
    ValueError: naming the workdir or folder when the config or a checkpoint is missing.
  """
  if which not in ("latest", "best"):
    raise ValueError(f"which={which!r}: expected 'latest' or 'best'")
  workdir = os.path.abspath(workdir)
  config = load_config(workdir)
  method = methods.get_method(config.method)
  mesh = mesh_lib.make_mesh()
  tx, _ = optimizer.make_optimizer(config)
  shapes = jax.eval_shape(lambda: state_lib.create(method, config, tx, pipeline.sample_batch(config), mesh))
  replicated = mesh_lib.replicated(mesh)
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes)
  folder = os.path.join(workdir, "checkpoints" if which == "latest" else "best")
  if not os.path.isdir(folder):
    raise InputError(f"{folder} does not exist: the run in {workdir} has saved no {which} checkpoint")
  with ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    step = manager.latest_step()
    if step is None:
      raise InputError(f"{folder} holds no checkpoint: the run in {workdir} has saved none yet")
    if which == "latest":
      state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
      params, method_state = state.params, state.method_state
    else:
      model = {"params": abstract.params, "method_state": abstract.method_state}
      model = manager.restore(step, args=ocp.args.StandardRestore(model))
      params, method_state = model["params"], model["method_state"]
  return SavedRun(workdir=workdir, config=config, method=method, mesh=mesh, params=params,
                  method_state=method_state, step=int(step), checkpoint=which)
