"""Training-step throughput of each method, jaxret against the same step in PyTorch.

  python benchmarks/train_step.py --all                       # every method x both standard cases
  python benchmarks/train_step.py --mobilenet                 # baseline, MobileNetV2: training and inference
  python benchmarks/train_step.py --method a3m --case r50_224_b8
  python benchmarks/train_step.py --method baseline --backbone resnet18 --image_size 64 --batch 32

Standard cases (backbone_width 1.0, the method's synthetic config otherwise, 100 classes, the
synthetic set's 12 attributes): r18_64_b32 = ResNet-18, 64 x 64, batch 32; r50_224_b8 =
ResNet-50, 224 x 224, batch 8; mv2_S_b32 = MobileNetV2 at S x S, batch 32 (`--mobilenet`: the
baseline at 64, 128 and 224 px, training and `--inference`). Each side runs in its own fresh
process (its peak memory is its own): the jitted jaxret train step (`jaxret.training.step.compile_train_step`: loss, gradients,
optimizer, donation) or the PyTorch model of `benchmarks/torch_reference/` (same layers and
loss, channels-last, the same optimizer; `torch.compile` and bfloat16 autocast on GPU) on the
same random batch; with `--inference`, the eval-mode embedding instead (jaxret: the jitted
`embed_fn`, what `launch.embed` and evaluation run; PyTorch: `model.eval()` under
`torch.inference_mode()`). Each is warmed up (`--warmup` steps), then `--steps` steps are timed one by
one; images/second is batch / median step time. Prints one JSON line per case:
  {"case", "device", "jaxret_img_s", "torch_img_s", "ratio" (jaxret / torch), "peak_mem_mb", ...}
peak_mem_mb is jaxret's: peak device memory on GPU, peak process RSS on CPU (torch's beside it).
jaxret_tflop_s counts XLA's cost analysis of the lowered step (forward, backward, update); mfu
divides it by the device's dense bfloat16 peak (`PEAK_BF16_TFLOPS`, GPUs only).
On CPU the jaxret side sets jaxret's XLA flags (`distributed.cpu_xla_flags`, what `launch.train`
does; `--xla_defaults` leaves XLA's own); `--xla_flags` adds or overrides flags for experiments.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("baseline", "a3m", "midattr", "a2net", "vapnet", "deml")
CASES = {"r18_64_b32": ("resnet18", 64, 32), "r50_224_b8": ("resnet50", 224, 8)}
MOBILENET_CASES = {f"mv2_{size}_b32": ("mobilenet_v2", size, 32) for size in (64, 128, 224)}
ALL_CASES = {**CASES, **MOBILENET_CASES}
NUM_CLASSES = 100
NUM_TRAIN_EXAMPLES = 3000
# Dense bfloat16 peak TFLOP/s by device kind (vendor data sheets), for model FLOPs utilisation.
PEAK_BF16_TFLOPS = {"NVIDIA H100 80GB HBM3": 989.0, "NVIDIA H200": 989.0, "NVIDIA A100-SXM4-80GB": 312.0,
                    "NVIDIA A100-SXM4-40GB": 312.0}


def method_config(args):
  """The method's synthetic config at the benchmark's backbone, size and batch, with the label
  spaces the training loop would fill in."""
  sys.path.insert(0, REPO)
  import importlib  # pylint: disable=import-outside-toplevel
  from jaxret.data import synthetic  # pylint: disable=import-outside-toplevel

  config = importlib.import_module(f"configs.{args.method}").get_config()
  config.unlock()
  config.backbone, config.backbone_width, config.image_size = args.backbone, 1.0, args.image_size
  config.batch_size = config.eval.batch_size = args.batch
  config.num_classes, config.num_train_examples = NUM_CLASSES, NUM_TRAIN_EXAMPLES
  config.attribute_sizes = tuple(len(v) for v in synthetic.ATTRIBUTE_VALUES)
  config.compute_dtype = args.dtype
  config.optimizer.warmup_steps = 0
  config.lock()
  return config


def random_batch(config, seed: int = 0) -> dict[str, np.ndarray]:
  """What the data pipeline hands a training step: images [B, H, W, 3], labels, attributes, indices."""
  rng = np.random.default_rng(seed)
  b, s = config.batch_size, config.image_size
  return {"image": rng.normal(size=(b, s, s, 3)).astype(np.float32),
          "label": rng.integers(0, NUM_CLASSES, size=b).astype(np.int32),
          "attributes": np.stack([rng.integers(0, n, size=b) for n in config.attribute_sizes], 1).astype(np.int32),
          "index": rng.choice(NUM_TRAIN_EXAMPLES, size=b, replace=False).astype(np.int32)}


def step_times(step, warmup: int, steps: int) -> list[float]:
  """Seconds of each of `steps` calls after `warmup` calls; `step()` returns when its work is done."""
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return times


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def jaxret_program(args):
  """jaxret's side of `args` on one device, compiled: `(config, lowered, step, compile_s)`, where
  `step()` runs the train step (or with `--inference` the jitted `embed_fn`) once and waits for
  it. Sets jaxret's CPU XLA flags first (`profile_step.py` builds the same program)."""
  sys.path.insert(0, REPO)
  from jaxret.training import distributed  # pylint: disable=import-outside-toplevel
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  if not args.xla_defaults:
    distributed.cpu_xla_flags()  # jaxret's defaults, unless the flags above set them
  import jax  # pylint: disable=import-outside-toplevel
  from jaxret import methods  # pylint: disable=import-outside-toplevel
  from jaxret import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from jaxret.training import optimizer
  from jaxret.training import state as state_lib, step as step_lib  # pylint: disable=import-outside-toplevel

  config = method_config(args)
  method = methods.get_method(config.method)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  batch = random_batch(config)
  tx, schedule = optimizer.make_optimizer(config)
  holder = {"state": state_lib.create(method, config, tx, batch, mesh)}
  global_batch = mesh_lib.global_batch(batch, mesh)
  if args.inference:
    embed = jax.jit(lambda params, method_state, images: method.embed_fn(params, method_state, images, config))
    state, images = holder["state"], global_batch["image"]
    start = time.perf_counter()
    lowered = embed.lower(state.params, state.method_state, images)
  else:
    train_step = step_lib.compile_train_step(method, config, tx, schedule, mesh)
    start = time.perf_counter()
    lowered = train_step.lower(holder["state"], global_batch)
  if args.flops:
    return config, lowered, None, 0.0
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start

  def step():
    if args.inference:
      jax.block_until_ready(compiled(state.params, state.method_state, images))
      return
    holder["state"], metrics = compiled(holder["state"], global_batch)
    jax.block_until_ready(metrics["loss"])

  return config, lowered, step, compile_s


def run_jaxret(args) -> dict:
  """Images/second of the compiled jaxret train step, its FLOPs (XLA's cost analysis) and peak memory."""
  config, lowered, step, compile_s = jaxret_program(args)
  import jax  # pylint: disable=import-outside-toplevel  (after jaxret_program set the XLA flags)
  # FLOPs of the program as lowered, before XLA's passes: on GPU the compiled program's convolutions
  # are cuDNN calls that its cost analysis does not count (an H200 ResNet-50 step: 1/30 of them).
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float((cost or {}).get("flops", float("nan")))
  if args.flops:
    return {"method": config.method, "batch": config.batch_size, "step_flops": flops}
  times = step_times(step, args.warmup, args.steps)
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform == "gpu" else None
  peak_tflops = PEAK_BF16_TFLOPS.get(device.device_kind)
  peak = stats["peak_bytes_in_use"] / 2**20 if stats else peak_rss_mb()
  img_s = config.batch_size / statistics.median(times)
  tflop_s = flops * img_s / config.batch_size / 1e12
  return {"img_s": img_s, "step_s": times, "compile_s": compile_s,
          "step_flops": flops, "tflop_s": round(tflop_s, 4),
          "mfu": round(tflop_s / peak_tflops, 3) if peak_tflops else None,
          "peak_mem_mb": peak, "device": f"{device.platform}:{device.device_kind}",
          "peak_bf16_tflops": peak_tflops,
          "version": f"jax {jax.__version__}", "xla_flags": os.environ.get("XLA_FLAGS", "")}


def run_torch(args) -> dict:
  """Images/second of the same step in the PyTorch reference model, and its peak memory."""
  sys.path.insert(0, os.path.join(REPO, "benchmarks"))
  import torch  # pylint: disable=import-outside-toplevel
  import torch_reference  # pylint: disable=import-outside-toplevel

  config = method_config(args)
  gpu = torch.cuda.is_available()
  device = torch.device("cuda" if gpu else "cpu")
  model = torch_reference.build(config).to(device, memory_format=torch.channels_last)
  optim = torch_optimizer(model, config.optimizer)
  batch = {k: v.to(device) for k, v in torch_reference.to_torch(random_batch(config)).items()}
  loss_fn = torch.compile(model.loss) if gpu and not args.no_torch_compile else model.loss
  bf16 = config.compute_dtype == "bfloat16"
  if args.inference:
    model.eval()

  def step():
    if args.inference:
      with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        embedding = model(batch["image"])["embedding"]
      if gpu:
        torch.cuda.synchronize()
      return embedding
    optim.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
      loss = loss_fn(batch)
    loss.backward()
    if hasattr(model, "after_step"):  # before the update, as jaxret's EMA sees the step's parameters
      model.after_step()
    optim.step()
    if gpu:
      torch.cuda.synchronize()
    else:
      loss.item()

  if gpu:
    torch.cuda.reset_peak_memory_stats()
  times = step_times(step, args.warmup, args.steps)
  peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb()
  name = torch.cuda.get_device_name() if gpu else "cpu"
  return {"img_s": config.batch_size / statistics.median(times), "step_s": times, "peak_mem_mb": peak,
          "device": name, "version": f"torch {torch.__version__}", "threads": torch.get_num_threads()}


def torch_optimizer(model, opt):
  """The torch optimizer matching jaxret's `config.optimizer` (coupled weight decay for sgd/adam)."""
  import torch  # pylint: disable=import-outside-toplevel
  params = [p for p in model.parameters() if p.requires_grad]
  if opt.name == "sgd":
    return torch.optim.SGD(params, lr=opt.learning_rate, momentum=opt.momentum, nesterov=opt.nesterov,
                           weight_decay=opt.weight_decay)
  if opt.name == "adam":
    return torch.optim.Adam(params, lr=opt.learning_rate, betas=(opt.b1, opt.b2), weight_decay=opt.weight_decay)
  return torch.optim.AdamW(params, lr=opt.learning_rate, betas=(opt.b1, opt.b2), weight_decay=opt.weight_decay)


def run_case(args, method: str, case: str | None, inference: bool) -> dict:
  """Both sides of one case, each in a fresh process; the combined JSON record."""
  backbone, image_size, batch = ALL_CASES[case] if case else (args.backbone, args.image_size, args.batch)
  common = ["--method", method, "--backbone", backbone, "--image_size", str(image_size), "--batch", str(batch),
            "--dtype", args.dtype, "--warmup", str(args.warmup), "--steps", str(args.steps)]
  if inference:
    common.append("--inference")
  if args.xla_flags:
    common += ["--xla_flags", args.xla_flags]
  if args.xla_defaults:
    common.append("--xla_defaults")
  if args.no_torch_compile:
    common.append("--no_torch_compile")
  sides = {}
  for side in ("jaxret", "torch"):
    out = subprocess.run([sys.executable, __file__, "--side", side] + common, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
      raise RuntimeError(f"{method} {case} {side} side failed:\n{out.stderr[-4000:]}")
    sides[side] = json.loads(out.stdout.strip().splitlines()[-1])
  jx, th = sides["jaxret"], sides["torch"]
  name = f"{method}/{case or f'{backbone}_{image_size}_b{batch}'}" + ("/inference" if inference else "")
  return {"case": name, "device": jx["device"],
          "jaxret_img_s": round(jx["img_s"], 2), "torch_img_s": round(th["img_s"], 2),
          "ratio": round(jx["img_s"] / th["img_s"], 3), "peak_mem_mb": round(jx["peak_mem_mb"]),
          "torch_peak_mem_mb": round(th["peak_mem_mb"]), "dtype": args.dtype,
          "jaxret_tflop_s": jx["tflop_s"], "mfu": jx["mfu"],
          "compile_s": round(jx["compile_s"], 1), "versions": [jx["version"], th["version"]],
          "torch_threads": th["threads"], "xla_flags": jx["xla_flags"]}


def make_parser() -> argparse.ArgumentParser:
  """The command line; `xla_cpu_flags.py` parses its runs with it too."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--all", action="store_true", help="every method x every standard case")
  parser.add_argument("--method", default="baseline", choices=METHODS)
  parser.add_argument("--mobilenet", action="store_true", help="the baseline's MobileNetV2 cases, training and inference")
  parser.add_argument("--case", choices=sorted(ALL_CASES),
                      help="a standard case (overrides the three below)")
  parser.add_argument("--backbone", default="resnet18")
  parser.add_argument("--image_size", type=int, default=64)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--inference", action="store_true", help="time the eval-mode embedding, not a training step")
  parser.add_argument("--xla_flags", default="", help="extra XLA_FLAGS for the jaxret side")
  parser.add_argument("--xla_defaults", action="store_true", help="XLA's own CPU defaults, not jaxret's flags")
  parser.add_argument("--no_torch_compile", action="store_true", help="eager PyTorch on GPU")
  parser.add_argument("--flops", action="store_true", help="with --side jaxret: only the lowered step's FLOPs")
  parser.add_argument("--side", choices=("jaxret", "torch"), help=argparse.SUPPRESS)
  return parser


def main():
  args = make_parser().parse_args()
  if args.side:
    print(json.dumps((run_jaxret if args.side == "jaxret" else run_torch)(args)))
    return
  if args.all:
    runs = [(m, c, False) for m in METHODS for c in CASES]
  elif args.mobilenet:
    runs = [("baseline", c, inference) for c in MOBILENET_CASES for inference in (False, True)]
  else:
    runs = [(args.method, args.case, args.inference)]
  for method, case, inference in runs:
    print(json.dumps(run_case(args, method, case, inference)), flush=True)


if __name__ == "__main__":
  main()
