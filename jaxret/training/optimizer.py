"""optax optimizers and learning-rate schedules from `config.optimizer`."""
import re

import ml_collections
import optax
from flax import traverse_util

from jaxret.user_errors import InputError

SCHEDULES = ("constant", "step", "cosine", "exponential")
OPTIMIZERS = ("sgd", "adam", "adamw")


def learning_rate_schedule(opt: ml_collections.ConfigDict, total_steps: int, factor: float = 1.0) -> optax.Schedule:
  """Linear warm-up over `warmup_steps`, then the decay named by `opt.schedule`.

  Step boundaries (`decay_boundaries`) are absolute training steps.
  """
  lr = opt.learning_rate * factor
  warmup = opt.warmup_steps
  if opt.schedule == "constant":
    main = optax.constant_schedule(lr)
  elif opt.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, decay_steps=max(total_steps - warmup, 1))
  elif opt.schedule == "step":
    main = optax.piecewise_constant_schedule(lr, {b - warmup: opt.decay_factor for b in opt.decay_boundaries})
  elif opt.schedule == "exponential":
    main = optax.exponential_decay(lr, opt.decay_every, opt.decay_factor, staircase=True)
  else:
    raise InputError(f"config.optimizer.schedule={opt.schedule!r}: expected one of {SCHEDULES}")
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def _transform(opt: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
  """SGD and Adam take L2 weight decay into the gradient (as PyTorch); AdamW decouples it."""
  if opt.name == "sgd":
    return optax.chain(optax.add_decayed_weights(opt.weight_decay),
                       optax.sgd(schedule, momentum=opt.momentum or None, nesterov=opt.nesterov))
  if opt.name == "adam":
    return optax.chain(optax.add_decayed_weights(opt.weight_decay), optax.adam(schedule, b1=opt.b1, b2=opt.b2))
  if opt.name == "adamw":
    return optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay)
  raise InputError(f"config.optimizer.name={opt.name!r}: expected one of {OPTIMIZERS}")


def param_groups(params, lr_multipliers) -> dict:
  """Labels each parameter with the index of the first `(regex, factor)` pair whose regex is
  found in its path ("backbone/layer1_0/conv1/kernel"), or "default"."""
  flat = traverse_util.flatten_dict(params, sep="/")
  labels = {}
  used = set()
  for path in flat:
    label = "default"
    for i, (pattern, _) in enumerate(lr_multipliers):
      if re.search(pattern, path):
        label = str(i)
        used.add(i)
        break
    labels[path] = label
  for i, (pattern, _) in enumerate(lr_multipliers):
    if i not in used:
      raise InputError(f"config.optimizer.lr_multipliers[{i}]: pattern {pattern!r} matches no parameter path")
  return traverse_util.unflatten_dict(labels, sep="/")


def make_optimizer(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimizer, and the base schedule (for logging).

  `config.optimizer.lr_multipliers` is a tuple of `(regex, factor)`: parameters whose path
  matches train at `factor` x the learning rate (e.g. DeML's learners at 10x).
  """
  opt = config.optimizer
  schedule = learning_rate_schedule(opt, config.total_steps)
  multipliers = tuple(opt.lr_multipliers)
  if not multipliers:
    return _transform(opt, schedule), schedule
  transforms = {"default": _transform(opt, schedule)}
  for i, (_, factor) in enumerate(multipliers):
    transforms[str(i)] = _transform(opt, learning_rate_schedule(opt, config.total_steps, factor))
  return optax.multi_transform(transforms, lambda params: param_groups(params, multipliers)), schedule
