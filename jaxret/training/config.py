"""The config keys every method shares, and the checks run before anything compiles."""

import jax
import ml_collections

from jaxret import methods, protocols
from jaxret.data import datasets
from jaxret.eval.hashing import EMPTY_QUERIES
from jaxret.user_errors import InputError
from jaxret.weights import pretrained

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
AUGMENTATIONS = ("resize", "random_crop", "random_resized_crop")
PIPELINES = ("host", "device")


def base_config() -> ml_collections.ConfigDict:
  """Keys shared by every method; a method's config file adds its own and locks the result."""
  c = ml_collections.ConfigDict()
  c.method = "baseline"
  c.dataset = "synthetic"
  c.data_dir = ""  # where prepared (TFDS) datasets live
  c.manual_dir = ""  # where raw downloads live
  c.backbone = "resnet18"
  c.backbone_width = 1.0  # channel multiplier: 1.0 = the published model; small values give tiny test models
  # "imagenet" (the backbone's ImageNet file, see jaxret/weights/pretrained.py) | "none" (random
  # init: training from scratch) | a weights file (.pth / .safetensors / launch.convert_weights .npz)
  c.init_weights = "imagenet"
  c.image_size = 64  # input width, and height unless image_height is set
  c.image_height = 0  # 0 = image_size (square); e.g. 448 with image_size 224 for re-ID
  c.batch_size = 32  # global, over all devices and processes
  c.total_steps = 1000
  c.seed = 0
  c.log_every = 50
  c.eval_every = 500  # 0 = only at the end
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.compute_dtype = "float32"
  c.num_classes = 0  # 0: the number of training classes of the dataset (set by the loop)
  c.attribute_sizes = ()  # values per attribute; (): the dataset's (set by the loop), if it has any
  c.num_train_examples = 0  # training-set size (set by the loop; A2-Net keeps a code per image)
  c.state_update_every = 0  # 0 = the method has no update_state
  c.num_workers = 0  # grain worker processes; 0 = read in the main process
  c.profile_steps = ()  # (first, last): a jax.profiler trace of those steps in <workdir>/profile
  # Multi-process: a process that sends no heartbeat for this long is declared lost, and every other
  # process then stops (jax.distributed's coordination service; README "Many hosts").
  c.heartbeat_timeout_seconds = 100

  c.data = ml_collections.ConfigDict()
  c.data.val_classes = 10  # training classes carved out for validation (model selection)
  c.data.val_images_per_class = 5  # hashing and classification protocols: validation images per class
  c.data.query_images_per_class = 10  # hashing protocol: test queries per class
  # "host": every step decodes and augments its images on the host (jaxret/data/pipeline.py);
  # "device": the training images are decoded once into memory (jaxret/data/decoded.py) and
  # augmented on the accelerator (jaxret/data/device_augment.py); random_crop and
  # random_resized_crop then sample inside the image stored at data.resize_size.
  c.data.pipeline = "host"
  c.data.device_prefetch = 2  # global batches put on the devices ahead of the step; 0 = on demand
  c.data.augment = "resize"  # resize | random_crop | random_resized_crop (see jaxret/data/pipeline.py)
  c.data.resize_size = 0  # random_crop: shorter side before cropping (e.g. 256 for 224 inputs)
  c.data.random_flip = True
  c.data.color_jitter = 0.0  # brightness / contrast / saturation strength; 0 = off
  c.data.classes_per_batch = 0  # P of P x K identity sampling (K = batch_size / P); 0 = shuffle
  # Outer iterations (ADSH, A2-Net): subset_epochs passes over each random subset of subset_size
  # training images, then a new subset; 0 = plain epochs (see jaxret/data/pipeline.py SubsetEpochs).
  c.data.subset_size = 0
  c.data.subset_epochs = 1
  c.data.synthetic_images_per_class = 60
  c.data.synthetic_seed = 0  # fixes the rendered classes; independent of the training seed

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "sgd"  # sgd | adam | adamw
  c.optimizer.learning_rate = 0.01
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.weight_decay = 5e-4
  c.optimizer.schedule = "cosine"  # constant | step | cosine | exponential
  c.optimizer.warmup_steps = 0
  c.optimizer.decay_boundaries = ()  # step schedule: steps where lr is multiplied by decay_factor
  c.optimizer.decay_factor = 0.1  # step and exponential schedules
  c.optimizer.decay_every = 1000  # exponential: lr *= decay_factor every decay_every steps
  c.optimizer.lr_multipliers = ()  # ((regex on the parameter path, factor), ...)

  c.eval = ml_collections.ConfigDict()
  c.eval.protocol = "retrieval"  # retrieval | reid | hashing | classification
  c.eval.batch_size = 128
  c.eval.ks = (1, 2, 4, 8)  # retrieval: Recall@K
  c.eval.metric = "cosine"  # retrieval and re-ID: cosine | euclidean
  c.eval.topk = 0  # hashing: also report map@topk when > 0
  c.eval.hashing_empty_queries = "skip"  # hashing: queries with no relevant item: skip | zero (AP 0)
  c.eval.selection_metric = ""  # validation metric that picks the best checkpoint; "" = protocol default
  # Retrieval and re-ID: report TPR at these false positive rates, e.g. (1e-4, 1e-3, 1e-2) (three more
  # scoring passes over all pairs, whatever the number of rates: 50k x 50k took 48 s -> 209 s).
  c.eval.fprs = ()
  c.eval.rerank = False  # re-ID: rank by k-reciprocal re-ranking (jaxret/eval/rerank.py)
  c.eval.rerank_k1, c.eval.rerank_k2, c.eval.rerank_lambda = 20, 6, 0.3
  c.eval.query_expansion = False  # re-ID: alpha-weighted average query expansion first (query_expansion.py)
  c.eval.query_expansion_k, c.eval.query_expansion_alpha = 10, 3.0
  return c


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None) -> None:
  """Stops with a message naming the key and what was expected; run before compiling."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  methods.get_method(config.method)
  pretrained.init_weights_path(config)
  datasets.check_available(config)
  if config.compute_dtype not in COMPUTE_DTYPES:
    raise InputError(f"config.compute_dtype={config.compute_dtype!r}: expected one of {COMPUTE_DTYPES}")
  for key in ("batch_size", "total_steps", "image_size", "log_every"):
    if config[key] <= 0:
      raise InputError(f"config.{key}={config[key]}: expected a positive integer")
  if config.state_update_every and methods.get_method(config.method).update_state is None:
    raise InputError(f"config.state_update_every={config.state_update_every}: method {config.method!r} has no "
                     f"update_state; expected 0")
  for key in ("eval_every", "checkpoint_every", "state_update_every", "num_workers", "image_height"):
    if config[key] < 0:
      raise InputError(f"config.{key}={config[key]}: expected 0 or a positive integer")
  steps = tuple(config.profile_steps)
  if steps and not (len(steps) == 2 and 1 <= steps[0] <= steps[1] <= config.total_steps):
    raise InputError(f"config.profile_steps={steps}: expected () or (first, last) with 1 <= first <= last <= "
                     f"config.total_steps={config.total_steps}")
  if config.data.augment not in AUGMENTATIONS:
    raise InputError(f"config.data.augment={config.data.augment!r}: expected one of {AUGMENTATIONS}")
  if config.data.pipeline not in PIPELINES:
    raise InputError(f"config.data.pipeline={config.data.pipeline!r}: expected one of {PIPELINES}")
  if config.data.device_prefetch < 0:
    raise InputError(f"config.data.device_prefetch={config.data.device_prefetch}: expected 0 or a positive integer")
  if (config.data.pipeline == "device" and config.data.augment != "resize"
      and config.data.resize_size < max(config.image_size, config.image_height)):
    raise InputError(f"config.data.resize_size={config.data.resize_size}: data.pipeline='device' with "
                     f"{config.data.augment} stores the images at that shorter side; expected >= the input "
                     f"size {max(config.image_size, config.image_height)}")
  if config.data.augment == "random_crop" and config.data.resize_size < max(config.image_size, config.image_height):
    raise InputError(f"config.data.resize_size={config.data.resize_size}: random_crop needs a shorter side "
                     f">= the input size {max(config.image_size, config.image_height)}")
  if config.data.classes_per_batch and config.batch_size % config.data.classes_per_batch:
    raise InputError(f"config.batch_size={config.batch_size} is not a multiple of "
                     f"config.data.classes_per_batch={config.data.classes_per_batch} (P x K sampling)")
  if config.data.subset_size:
    if config.data.subset_size < 0 or config.data.subset_epochs < 1 or config.data.classes_per_batch:
      raise InputError(f"config.data.subset_size={config.data.subset_size}, subset_epochs="
                       f"{config.data.subset_epochs}: expected a positive size, at least one epoch and "
                       f"config.data.classes_per_batch=0")
    images = config.data.subset_size * config.data.subset_epochs
    if config.state_update_every and config.state_update_every * config.batch_size != images:
      raise InputError(f"config.state_update_every={config.state_update_every}: expected "
                       f"{images} / config.batch_size={config.batch_size} (one outer iteration of "
                       f"config.data.subset_epochs x subset_size images)")
  validate_evaluation(config)
  names = protocols.metric_names(config)
  if config.eval.selection_metric and config.eval.selection_metric not in names:
    raise InputError(f"config.eval.selection_metric={config.eval.selection_metric!r}: expected one of "
                     f"the {config.eval.protocol} metrics {names}")
  for key, value in (("batch_size", config.batch_size), ("eval.batch_size", config.eval.batch_size)):
    if value % num_devices:
      raise InputError(
          f"config.{key}={value} is not divisible by the {num_devices} devices: "
          f"expected a multiple of {num_devices}")


def validate_evaluation(config: ml_collections.ConfigDict) -> None:
  """The `config.eval` checks of `validate` (all but the selection metric's)."""
  protocols.get_protocol(config)
  if config.eval.metric not in ("cosine", "euclidean"):
    raise InputError(f"config.eval.metric={config.eval.metric!r}: expected 'cosine' or 'euclidean'")
  if config.eval.hashing_empty_queries not in EMPTY_QUERIES:
    raise InputError(f"config.eval.hashing_empty_queries={config.eval.hashing_empty_queries!r}: expected one "
                     f"of {EMPTY_QUERIES} (jaxret/eval/hashing.py)")
  if (config.eval.rerank or config.eval.query_expansion) and config.eval.protocol != "reid":
    raise InputError(f"config.eval.rerank={config.eval.rerank}, query_expansion={config.eval.query_expansion} "
                     f"with config.eval.protocol={config.eval.protocol!r}: re-ranking and query expansion are "
                     "offered for the reid protocol")
  if any(not 0.0 < f <= 1.0 for f in config.eval.fprs):
    raise InputError(f"config.eval.fprs={tuple(config.eval.fprs)}: expected false positive rates in (0, 1]")


def parse_arg(arg: str, config_file: str, **defaults: str) -> dict[str, str]:
  """`"dataset=cub,bits=48"` -> {"dataset": "cub", "bits": "48"} over `defaults`; an unknown
  or malformed argument raises a ValueError naming it and the accepted ones."""
  options = dict(defaults)
  for item in filter(None, arg.split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in defaults:
      raise InputError(f"{config_file}: bad argument {item!r}; expected KEY=VALUE with KEY in {sorted(defaults)}")
    options[key] = value
  return options
