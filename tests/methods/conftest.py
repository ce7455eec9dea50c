"""The tiny training run on synthetic data that each method's tests end with."""
import json
import os

from jaxret.training import loop

# A 4-channel ResNet-18 on 32 px images: 4 steps of 8, a final evaluation only.
TINY_RUN = {"backbone_width": 0.0625, "image_size": 32, "batch_size": 8, "total_steps": 4, "log_every": 2,
            "eval_every": 0, "checkpoint_every": 4, "data.synthetic_images_per_class": 4, "data.val_classes": 2,
            "eval.batch_size": 64, "optimizer.warmup_steps": 0}


def train_tiny(config, workdir, **overrides) -> tuple[dict, list[dict]]:
  """Sets `TINY_RUN` and `overrides` ("section.key" names) on `config`, trains it in `workdir` ->
  (the final test metrics, the lines of metrics.jsonl)."""
  for key, value in {**TINY_RUN, **overrides}.items():
    *sections, leaf = key.split(".")
    target = config
    for section in sections:
      target = target[section]
    target[leaf] = value
  results = loop.train(config, str(workdir))
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return results, [json.loads(line) for line in f]
