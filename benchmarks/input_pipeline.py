"""Training input pipeline throughput on JPEG files: jaxret's grain pipeline vs a PyTorch DataLoader.

  python benchmarks/input_pipeline.py                            # 512 JPEGs, 0 and 2 workers
  python benchmarks/input_pipeline.py --num_workers 0,1,2 --data_dir /tmp/jpegs   # keep the files

Generates `--images` JPEG files (about 500x375, smooth colour fields + texture + pixel noise,
quality 90, ~80 KB each) in a temporary directory (or reuses `--data_dir`), then, for every
(engine, workers) pair, runs a fresh child process that reads batches of `--batch` images:
- grain: `jaxret.data.pipeline.train_dataset(source, transform=train_transform(config),
  num_workers=W)` with configs/baseline.py at image_size 224, random_resized_crop, flip and
  colour jitter 0.4 (W > 0: grain `mp_prefetch`, spawned worker processes).
- torch: `DataLoader(batch_size, num_workers=W, shuffle=True, drop_last=True,
  persistent_workers=W > 0)` over a Dataset applying the same `train_transform` and `normalize`
  with a per-sample numpy Generator, then `torch.from_numpy` (forked worker processes).
Both sources read the file bytes and decode them with PIL in `__getitem__`, so decoding is
measured. Since both engines run the same transform code, the difference between them is the
loader machinery (process start-up, batching, transfer of batches to the main process).
With 0 workers a third child measures `data.pipeline = "device"`'s host side (`decoded`): the
JPEGs decoded once into memory at a shorter side of 8/7 x the input (its start-up), then batches
of uint8 canvases and stream positions; its line ("..._decoded") compares images per CPU-second
(per core) with grain's JPEG path of the same run, and adds the jitted device augmentation's
images/s on this machine's JAX device (`device_augment_img_s_here`; on CPU a stand-in).

One JSON line per worker count, with the keys of every benchmark here (case, device,
jaxret_img_s = grain's images/second, torch_img_s, ratio = grain / torch, peak_mem_mb = the
summed RSS peak of grain's process tree) and each engine's record: images_per_second over `--batches` batches after
`--warmup` batches (the first batch included in the warm-up), startup_s (iterator creation to
the first batch: worker start-up + one batch; modules are imported before), the CPU seconds
the process tree spent per image in the timed window, and peak memory: the main process's
ru_maxrss, and the peak over the run of the summed RSS (every 0.2 s) and PSS (shared pages
split; every 1 s) of the child and its workers, sampled from the parent process.

grain's `to_iter_dataset` reads ahead with 16 threads per process (`ReadOptions` defaults), even
with 0 workers, and they finish batches in bursts of 16 (per worker process when W > 0). The default warm-up (64) and timed batches (128) are multiples of 32, so for W <= 2
the timed window starts and ends at the end of a burst. `--step_ms` sleeps after every batch,
as a training step would, to show how the read-ahead buffers grow when the consumer is slower.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_jpegs(directory: str, n: int, seed: int = 0) -> list[str]:
  """`n` JPEGs of ~500x375 (every fifth one portrait) with photo-like statistics, quality 90."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(n):
    path = os.path.join(directory, f"{i:05d}.jpg")
    paths.append(path)
    if os.path.exists(path):
      continue
    h, w = int(rng.integers(330, 420)), 500
    if i % 5 == 4:
      h, w = w, h

    def field(gh: int, gw: int, amplitude: float) -> np.ndarray:
      small = rng.uniform(0, 255, (gh, gw, 3)).astype(np.uint8)
      return (np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.float32) - 128) * amplitude

    x = (128 + field(3, 4, 0.9) + field(12, 16, 0.35) + field(60, 80, 0.3) + field(150, 200, 0.3)
         + rng.normal(0, 6, (h, w, 3)))
    Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
  return paths


class JpegSource:
  """grain source protocol: `source[i] -> {"image": uint8 [H, W, 3], "label": int32}`, decoded with PIL."""

  def __init__(self, paths: list[str], num_classes: int):
    self.paths = list(paths)
    self.labels = np.arange(len(paths), dtype=np.int32) % num_classes

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict:
    with open(self.paths[index], "rb") as f:
      data = f.read()
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {"image": image, "label": self.labels[index]}


def load_config(image_size: int):
  """configs/baseline.py at `image_size`, random_resized_crop + flip + colour jitter 0.4."""
  sys.path.insert(0, REPO)
  spec = importlib.util.spec_from_file_location("baseline_config", os.path.join(REPO, "configs", "baseline.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.image_size = image_size
  config.data.augment = "random_resized_crop"
  config.data.color_jitter = 0.4
  config.data.random_flip = True
  return config


def grain_batches(source: JpegSource, config, batch: int, workers: int, seed: int):
  """An endless iterator over jaxret's training batches, and a function that closes it."""
  from absl import flags  # pylint: disable=import-outside-toplevel

  from jaxret.data import pipeline  # pylint: disable=import-outside-toplevel

  if not flags.FLAGS.is_parsed():  # grain's mp_prefetch reads its absl flags (absl.app does this in launch/)
    flags.FLAGS.mark_as_parsed()
  ds = pipeline.train_dataset(source, train_classes=range(int(source.labels.max()) + 1), global_batch=batch,
                              seed=seed, transform=pipeline.train_transform(config), num_workers=workers)
  it = iter(ds)
  return it, getattr(it, "close", lambda: None)


def decoded_batches(source: JpegSource, config, batch: int, workers: int, seed: int):
  """`data.pipeline = "device"`'s host side: every JPEG decoded once (`DecodedImages`, shorter
  side 256), then batches of uint8 canvases with each example's stream position (indexing and
  copying); the augmentation is left to the accelerator."""
  from jaxret.data import decoded, pipeline  # pylint: disable=import-outside-toplevel

  config.data.resize_size = round(config.image_size * 8 / 7)  # 256 for 224: torchvision's resize
  stored = decoded.DecodedImages(source, config)
  ds = pipeline.train_dataset(stored, train_classes=range(int(source.labels.max()) + 1), global_batch=batch,
                              seed=seed, num_workers=workers, on_device=True)
  return iter(ds), lambda: None


def device_augment_speed(config, batch: dict, repeats: int = 5) -> float:
  """Images/s of the jitted device augmentation (`jaxret.data.device_augment`) of `batch` on this
  machine's default JAX device, after a compiling call."""
  import jax  # pylint: disable=import-outside-toplevel

  from jaxret.data import device_augment  # pylint: disable=import-outside-toplevel

  settings = device_augment.Settings.of(config)
  augment = jax.jit(lambda b: device_augment.augment_batch(b, settings))
  batch = jax.device_put({k: batch[k] for k in ("image", "image_hw", "position")})
  jax.block_until_ready(augment(batch))
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(augment(batch))
  return repeats * len(batch["position"]) / (time.perf_counter() - start)


def torch_batches(source: JpegSource, config, batch: int, workers: int, seed: int):
  """An endless iterator over DataLoader batches (epoch after epoch), and a function that closes it."""
  import torch  # pylint: disable=import-outside-toplevel
  from torch.utils import data as torch_data  # pylint: disable=import-outside-toplevel

  from jaxret.data import pipeline  # pylint: disable=import-outside-toplevel

  transform = pipeline.train_transform(config)

  class Augmented(torch_data.Dataset):
    """`source` decoded, augmented by `transform` with a per-sample Generator, normalised."""

    def __init__(self):
      self.calls = 0

    def __len__(self) -> int:
      return len(source)

    def __getitem__(self, index: int) -> dict:
      info = torch_data.get_worker_info()
      self.calls += 1
      rng = np.random.default_rng([seed, info.id if info else 0, index, self.calls])
      example = source[index]
      image = pipeline.normalize(transform(example["image"], rng))
      return {"image": torch.from_numpy(image), "label": int(example["label"])}

  torch.manual_seed(seed)
  loader = torch_data.DataLoader(Augmented(), batch_size=batch, num_workers=workers, shuffle=True,
                                 drop_last=True, persistent_workers=workers > 0)
  state = {"iter": None}

  def endless():
    while True:
      state["iter"] = iter(loader)
      yield from state["iter"]

  def close():
    it = state["iter"]
    if it is not None and hasattr(it, "_shutdown_workers"):
      it._shutdown_workers()  # pylint: disable=protected-access

  return endless(), close


def tree_cpu_seconds() -> float:
  """User + system CPU seconds of this process and its live descendants."""
  import psutil  # pylint: disable=import-outside-toplevel

  total = 0.0
  me = psutil.Process()
  for p in [me] + me.children(recursive=True):
    try:
      t = p.cpu_times()
      total += t.user + t.system
    except psutil.Error:
      pass
  return total


def run_child(args) -> dict:
  """Measures one (engine, workers) pair in this process; returns the JSON record."""
  engine, workers = args.child.split(":")
  workers = int(workers)
  paths = sorted(os.path.join(args.data_dir, f) for f in os.listdir(args.data_dir) if f.endswith(".jpg"))
  source = JpegSource(paths[:args.images], args.classes)
  config = load_config(args.image_size)
  make = {"grain": grain_batches, "torch": torch_batches, "decoded": decoded_batches}[engine]
  import jaxret.data.pipeline  # pylint: disable=import-outside-toplevel,unused-import
  if engine == "torch":
    import torch  # pylint: disable=import-outside-toplevel,unused-import
  load_start = os.getloadavg()[0]

  start = time.perf_counter()  # modules imported: start-up is iterator creation to first batch
  it, close = make(source, config, args.batch, workers, args.seed)
  first = next(it)
  startup = time.perf_counter() - start
  image = np.asarray(first["image"])
  if engine == "decoded":  # uint8 canvases for the device augmentation
    assert image.dtype == np.uint8 and image.shape[0] == args.batch, image.shape
    augment_img_s = device_augment_speed(config, first)
  else:
    assert image.shape == (args.batch, args.image_size, args.image_size, 3) and image.dtype == np.float32, image.shape
  del first
  for _ in range(args.warmup - 1):
    next(it)
    time.sleep(args.step_ms / 1000)
  cpu0, t0 = tree_cpu_seconds(), time.perf_counter()
  arrivals = []
  for _ in range(args.batches):
    batch = next(it)
    arrivals.append(time.perf_counter())
    time.sleep(args.step_ms / 1000)
  elapsed = time.perf_counter() - t0
  cpu = tree_cpu_seconds() - cpu0
  assert np.asarray(batch["image"]).shape == image.shape
  del batch
  close()
  images = args.batches * args.batch
  half = args.batches // 2
  halves = [half * args.batch / (arrivals[half - 1] - t0),
            (args.batches - half) * args.batch / (arrivals[-1] - arrivals[half - 1])]
  record = {"engine": engine, "num_workers": workers, "images_per_second": round(images / elapsed, 1),
          "images_per_second_halves": [round(x, 1) for x in halves], "step_ms": args.step_ms,
          "timed_s": round(elapsed, 2), "timed_images": images, "startup_s": round(startup, 2),
          "cpu_s_per_image": round(cpu / images, 5),
          "main_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          "load_avg_1min_before": round(load_start, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2)}
  if engine == "decoded":
    record["device_augment_img_s_here"] = round(augment_img_s, 1)
  if args.gaps:
    record["gaps_ms"] = [round(g * 1e3) for g in np.diff([t0] + arrivals)]
  return record


def measure(argv: list[str]) -> dict:
  """Runs a child process, sampling its process tree's summed RSS / PSS every 0.1 s."""
  import psutil  # pylint: disable=import-outside-toplevel

  proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + argv, stdout=subprocess.PIPE, cwd=REPO)
  root = psutil.Process(proc.pid)
  peak_rss = peak_pss = 0
  procs, tick = [root], 0
  while proc.poll() is None:  # RSS every 0.2 s; the tree and PSS (smaps_rollup, ~8 ms a process) every 1 s
    if tick % 5 == 0:
      try:
        procs = [root] + root.children(recursive=True)
      except psutil.Error:
        pass
    rss = pss = 0
    for p in procs:
      try:
        if tick % 5 == 0:
          m = p.memory_full_info()
          pss += m.pss
        else:
          m = p.memory_info()
        rss += m.rss
      except psutil.Error:
        pass
    peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
    tick += 1
    time.sleep(0.2)
  out = proc.stdout.read().decode()
  if proc.returncode:
    raise RuntimeError(f"child {argv} failed with {proc.returncode}")
  record = json.loads(out.strip().splitlines()[-1])
  record["tree_peak_rss_bytes"], record["tree_peak_pss_bytes"] = peak_rss, peak_pss
  return record


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_workers", default="0,2", help="comma-separated worker counts")
  parser.add_argument("--images", type=int, default=512)
  parser.add_argument("--classes", type=int, default=16)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--batches", type=int, default=128, help="timed batches")
  parser.add_argument("--warmup", type=int, default=64, help="untimed batches, the first one included")
  parser.add_argument("--step_ms", type=float, default=0,
                      help="sleep after each batch, as a training step would (0: measure the loader alone)")
  parser.add_argument("--image_size", type=int, default=224)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data_dir", default="", help="where the JPEGs are (written if missing); default a temp dir")
  parser.add_argument("--gaps", action="store_true", help="add the timed batches' arrival gaps (ms) to the records")
  parser.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(run_child(args)), flush=True)
    return

  with tempfile.TemporaryDirectory() as tmp:
    data_dir = args.data_dir or tmp
    paths = write_jpegs(data_dir, args.images, args.seed)
    sizes = [os.path.getsize(p) for p in paths]
    data = {"images": len(paths), "mean_jpeg_bytes": int(np.mean(sizes))}
    common = [f"--{k}={getattr(args, k)}" for k in ("images", "classes", "batch", "batches", "warmup", "step_ms", "image_size", "seed")]
    common += ["--gaps"] if args.gaps else []
    for workers in [int(w) for w in args.num_workers.split(",")]:
      grain, torch = (measure(common + [f"--data_dir={data_dir}", f"--child={engine}:{workers}"])
                      for engine in ("grain", "torch"))
      print(json.dumps({
          "case": f"input_pipeline/{args.image_size}px_b{args.batch}_w{workers}", "device": "cpu",
          "jaxret_img_s": grain["images_per_second"], "torch_img_s": torch["images_per_second"],
          "ratio": round(grain["images_per_second"] / torch["images_per_second"], 3),
          "peak_mem_mb": round(grain["tree_peak_rss_bytes"] / 2**20),
          "torch_peak_mem_mb": round(torch["tree_peak_rss_bytes"] / 2**20), "data": data, "grain": grain,
          "torch": torch}), flush=True)
      if workers == 0:  # decoded records: no worker processes (they would each copy the decoded set)
        stored = measure(common + [f"--data_dir={data_dir}", "--child=decoded:0"])
        per_core = {name: 1 / record["cpu_s_per_image"] for name, record in (("decoded", stored), ("jpeg", grain))}
        print(json.dumps({
            "case": f"input_pipeline/{args.image_size}px_b{args.batch}_decoded", "device": "cpu",
            "jaxret_img_s": stored["images_per_second"], "jpeg_img_s": grain["images_per_second"],
            "img_s_per_core": round(per_core["decoded"], 1), "jpeg_img_s_per_core": round(per_core["jpeg"], 1),
            "ratio_per_core": round(per_core["decoded"] / per_core["jpeg"], 1),
            "decode_once_s": stored["startup_s"], "peak_mem_mb": round(stored["tree_peak_rss_bytes"] / 2**20),
            "jpeg_peak_mem_mb": round(grain["tree_peak_rss_bytes"] / 2**20), "data": data, "decoded": stored}),
            flush=True)

if __name__ == "__main__":
  main()
