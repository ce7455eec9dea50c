"""Where a jaxret training step's time goes on CPU: a `jax.profiler` trace, summed by XLA op kind.

  python benchmarks/profile_step.py --method baseline --case r50_224_b8 [--steps 3]

Builds the step with `train_step.py`'s jaxret side (`jaxret_program`: same config, batch, XLA
flags; `--inference` profiles the embedding), runs a warm-up step, traces `--steps` steps
(Perfetto trace of XLA:CPU's per-thunk events) and prints one JSON line: the traced step's wall
time, the op time per step, and per op kind (the thunk or fusion name without its numeric
suffix, e.g. "convolution", "loop_multiply_fusion", "ynn_fusion") the milliseconds per step
summed over threads, largest first. XNNPACK's convolution thunks emit no events, so the op
time falls short of the wall time by about their share.
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
    args.backbone, args.image_size, args.batch = train_step.ALL_CASES[args.case]
  _, _, step, _ = train_step.jaxret_program(args)
  import jax  # pylint: disable=import-outside-toplevel  (after jaxret_program set the XLA flags)
  step()  # warm-up
  with tempfile.TemporaryDirectory() as trace_dir:
    start = time.perf_counter()
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(args.steps):
        step()
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
