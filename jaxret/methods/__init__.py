"""Methods, found by name: `config.method = "deml"` imports `jaxret.methods.deml`.

Every method module exposes the same surface, so the loop and evaluators never special-case one:
- `Model(nn.Module)`: `__call__(images, *, train) -> dict` with at least "embedding" (or "code");
  its backbone is the submodule named "backbone" (`config.init_weights` fills it).
- `init_state(rng, config, sample_batch) -> (params, method_state)`: `method_state` holds
  non-trained variables ("batch_stats", EMA encoders, hash database codes).
- `loss_fn(params, method_state, batch, rng, config) -> (loss, (metrics, new_method_state))`: pure.
- `embed_fn(params, method_state, images, config) -> [B, D]`: what evaluation and search use
  (hashing methods: the real-valued code; its sign is the hash code).
- `update_state(params, method_state, data, config) -> method_state`: optional, run every
  `config.state_update_every` steps for work outside the gradient step.
- `database_codes(params, method_state, config) -> [N_train, bits]`: optional (hashing methods
  that learn a code per training image, A2-Net's / ADSH's Z): row j is training image j; the
  hashing protocol then ranks queries against these codes (ADSH's and SEMICON's evaluation) and
  reports the score against the re-encoded training images beside it (`reencoded/map`, ...).
- `classify_fn(params, method_state, images, config) -> [B, num_classes]`: optional, class logits
  (logit i = the i-th training class); needed by `config.eval.protocol = "classification"`.
- `after_pretrained_backbone(params, method_state, config) -> (params, method_state)`: optional,
  run once after `config.init_weights` filled the backbone (midattr copies its last stage into
  the part branch).
- `attribute_fn(params, method_state, images, config) -> int32 [B, K] | None`: optional, the
  predicted value of each of the dataset's K attributes (None when this config predicts none);
  the evaluators then report `attribute_accuracy` on splits whose examples have "attributes".
"""
import importlib
import types

from jaxret.user_errors import InputError


def get_method(name: str) -> types.ModuleType:
  """The module `jaxret.methods.<name>`."""
  try:
    return importlib.import_module(f"jaxret.methods.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"jaxret.methods.{name}":
      raise
    raise InputError(f"config.method={name!r}: no module jaxret/methods/{name}.py") from None
