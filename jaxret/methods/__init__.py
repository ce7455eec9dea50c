"""The method contract, and methods found by name: `config.method = "deml"` is
`jaxret.methods.deml.METHOD`, or a method `register`ed from outside the package (a notebook, a
test, another project).

A method is a `Method`: its name and the functions the training loop, the evaluators and the
tools call. The model module beside it defines them; a capability the method lacks is None.
Required:
- `init_state(rng, config, sample_batch) -> (params, method_state)`: `method_state` holds
  non-trained variables ("batch_stats", EMA encoders, hash database codes). A backbone is the
  submodule named "backbone" (`config.init_weights` fills it).
- `loss_fn(params, method_state, batch, rng, config) -> (loss, (metrics, new_method_state))`: pure.
- `embed_fn(params, method_state, images, config) -> [B, D]`: what evaluation and search use
  (hashing methods: the real-valued code; its sign is the hash code).
Optional:
- `update_state(params, method_state, data, config) -> method_state`: run every
  `config.state_update_every` steps for work outside the gradient step.
- `database_codes(params, method_state, config) -> [N_train, bits]`: hashing methods that learn
  a code per training image (A2-Net's / ADSH's Z): row j is training image j; the hashing
  protocol then ranks queries against these codes (ADSH's and SEMICON's evaluation) and reports
  the score against the re-encoded training images beside it (`reencoded/map`, ...).
- `classify_fn(params, method_state, images, config) -> [B, num_classes]`: class logits (logit i
  = the i-th training class); needed by `config.eval.protocol = "classification"`.
- `attribute_fn(params, method_state, images, config) -> int32 [B, K]`: the predicted value of
  each of the dataset's K attributes, for the configs where `predicts_attributes(config)` (all,
  when that is None); the evaluators then report `attribute_accuracy` on splits whose examples
  have "attributes".
- `after_pretrained_backbone(params, method_state, config) -> (params, method_state)`: run once
  after `config.init_weights` filled the backbone (MidAttr copies its last stage into the part
  branch).
- `make_model(config) -> flax.linen.Module`: the method's model, for tools that read its raw
  outputs (`jaxret.viz.attention`'s figures of attention maps, crop boxes and views).

Adding a method: a module `jaxret/methods/NAME.py` ending in `METHOD = Method("NAME", ...)` and a
config `configs/NAME.py` setting `config.method = "NAME"` (README "Add a method").
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

import ml_collections

from jaxret.user_errors import InputError


@dataclasses.dataclass(frozen=True)
class Method:
  """A method's name and functions (module docstring); an optional capability is None."""
  name: str
  init_state: Callable | None = None
  loss_fn: Callable | None = None
  embed_fn: Callable | None = None
  update_state: Callable | None = None
  database_codes: Callable | None = None
  classify_fn: Callable | None = None
  attribute_fn: Callable | None = None
  predicts_attributes: Callable[[ml_collections.ConfigDict], bool] | None = None
  after_pretrained_backbone: Callable | None = None
  make_model: Callable | None = None

  def attribute_fn_for(self, config: ml_collections.ConfigDict) -> Callable | None:
    """`attribute_fn` when this config predicts attributes, else None."""
    if self.attribute_fn is None or (self.predicts_attributes is not None and not self.predicts_attributes(config)):
      return None
    return self.attribute_fn


REQUIRED = ("init_state", "loss_fn", "embed_fn")
_REGISTERED: dict[str, Method] = {}


def register(method: Method) -> Method:
  """Makes `method` the one `config.method = method.name` finds; returns it."""
  missing = [name for name in REQUIRED if getattr(method, name) is None]
  if missing:
    raise InputError(f"method {method.name!r}: {missing} missing; a method needs {list(REQUIRED)}")
  _REGISTERED[method.name] = method
  return method


def get_method(name: str) -> Method:
  """The method registered as `name`, else `jaxret.methods.<name>.METHOD`."""
  if name not in _REGISTERED:
    try:
      module = importlib.import_module(f"jaxret.methods.{name}")
    except ModuleNotFoundError as e:
      if e.name != f"jaxret.methods.{name}":
        raise
      raise InputError(f"config.method={name!r}: no module jaxret/methods/{name}.py and no method registered "
                       f"under that name (jaxret.methods.register)") from None
    register(module.METHOD)
  return _REGISTERED[name]
