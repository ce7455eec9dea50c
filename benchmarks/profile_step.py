"""Where a jaxret training step's time goes on CPU: a `jax.profiler` trace, summed by XLA op kind.

  python benchmarks/profile_step.py --method baseline --case r50_224_b8 [--steps 3]

Builds the step exactly as `train_step.py`'s jaxret side (same config, batch, XLA flags), runs a
warm-up step, traces `--steps` steps (Perfetto trace of XLA:CPU's per-thunk events) and prints
one JSON line: the step's wall time, and per op kind (the thunk or fusion name without its
numeric suffix, e.g. "convolution", "loop_multiply_fusion", "ynn_fusion") the milliseconds per
step summed over threads and its share, largest first. Thread time exceeds wall time where
XLA:CPU runs thunks concurrently.
"""
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_step  # pylint: disable=wrong-import-position


# Trace events that are not XLA ops: Python frames ("$file:line ..."), the executor's own spans.
NOT_OPS = ("$", "ThunkExecutor", "PjitFunction", "SlinkyThreadPool", "TfrtCpu")


def op_kind(name: str) -> str:
  """"loop_add_fusion.12" -> "loop_add_fusion"; "convolution.3" -> "convolution"."""
  return re.sub(r"(\.\d+)+$", "", name)


def main():
  parser = train_step.make_parser()
  args = parser.parse_args()
  if args.case:
    args.backbone, args.image_size, args.batch = {**train_step.CASES, **train_step.MOBILENET_CASES}[args.case]
  sys.path.insert(0, train_step.REPO)
  from jaxret.train import distributed  # pylint: disable=import-outside-toplevel
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  if not args.xla_defaults:
    distributed.cpu_xla_flags()
  import jax  # pylint: disable=import-outside-toplevel
  from jaxret import methods  # pylint: disable=import-outside-toplevel
  from jaxret.train import mesh as mesh_lib, optimizer  # pylint: disable=import-outside-toplevel
  from jaxret.train import state as state_lib, step as step_lib  # pylint: disable=import-outside-toplevel

  config = train_step.method_config(args)
  method = methods.get_method(config.method)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  batch = mesh_lib.global_batch(train_step.random_batch(config), mesh)
  tx, schedule = optimizer.make_optimizer(config)
  state = state_lib.create(method, config, tx, train_step.random_batch(config), mesh)
  compiled = step_lib.compile_train_step(method, config, tx, schedule, mesh).lower(state, batch).compile()
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics["loss"])
  with tempfile.TemporaryDirectory() as trace_dir:
    start = time.perf_counter()
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(args.steps):
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics["loss"])
    step_s = (time.perf_counter() - start) / args.steps
    with gzip.open(glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)[0]) as f:
      events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  totals = collections.Counter()
  for event in events:
    name = event.get("name", "")
    if event.get("ph") == "X" and "dur" in event and not name.startswith(NOT_OPS):
      totals[op_kind(name)] += event["dur"] / 1e3 / args.steps
  print(json.dumps({"case": f"{args.method}/{args.backbone}_{args.image_size}_b{args.batch}",
                    "traced_step_ms": round(step_s * 1e3, 1), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "op_ms_per_step": round(sum(totals.values()), 1),
                    "ms_per_step": {k: round(v, 1) for k, v in totals.most_common(25)}}))


if __name__ == "__main__":
  main()
