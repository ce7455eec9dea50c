"""A paper's ablation table on the synthetic creatures, every row fine-tuned from the ImageNet
MobileNetV2; one JSON line per row and seed, then the Markdown table with a verdict per claim.

  python benchmarks/reproduce.py --method a3m [--seeds 0,1] [--rows baseline1,a3m] [--steps 100]
      [--workdir /tmp/reproduce] [--out benchmarks/results/reproduce/a3m.jsonl] [--set KEY=VALUE ...]
  python benchmarks/reproduce.py --method a3m --table      # only the table of the lines in --out

Tables: a3m (A3M Table 1), midattr (Zhang & Xu Tables 4-5), deml (DeML Tables 2 and 4), a2net
(A2-Net Table 2, each variant at 12 / 24 / 32 / 48 bits; its table of record is trained on the
frozen backbone by benchmarks/a2net_frozen_backbone.py), vapnet (VAPNet Table 1).

Every row trains `jaxret.training.loop.train` on the creatures (30 images per class: 90 training
classes, 10 validation classes choose the checkpoint, 100 unseen test classes) with the settings of
`FINE_TUNE` (the ImageNet MobileNetV2, 128 px: a 4 x 4 last map, SGD at 0.01 with the backbone at
0.1 x, cosine, `--steps` steps of batch 32), then scores the chosen model on each of the method's
`scorings`: a protocol (retrieval: Recall@K and mAP@R under cosine; reid: the test classes split
into query / gallery by camera, CMC and mAP under Euclidean distance) or a variant of the config
(MidAttr's descriptors); a table may add statistics of the chosen model (DeML's learner
similarity). Fine-tuned, Recall@1 and rank-1 are near 1 on the creatures, so the claims
are judged on mAP@R and mAP too.
A line (`method`, `row`, `seed`, one dict of metrics per scoring, `attribute_accuracy`, the
validation metric of the chosen step, `seconds`, the settings) is appended to --out as soon as its
row is done; rows and seeds already there are skipped, so an interrupted table resumes.

Verdicts compare the seed ranges (min to max) of the two sides of a claim: "reproduced" when the
paper's higher side is above with the ranges apart, "not reproduced" when it is below with the
ranges apart, "within noise" when they overlap.
"""
import argparse
import ast
import dataclasses
import importlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jaxret.training import distributed  # noqa: E402  (before jax initialises its backend)

distributed.cpu_xla_flags()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from jaxret.data import datasets  # noqa: E402
from jaxret.eval import evaluator as evaluator_lib  # noqa: E402
from jaxret import saved_run  # noqa: E402
from jaxret.training import loop

import a2net_decorrelation  # noqa: E402  (benchmarks/, beside this file)
import deml_adversary  # noqa: E402

# Fine-tuning the ImageNet MobileNetV2 on the creatures, the same for every row of every table.
FINE_TUNE = {
    "backbone": "mobilenet_v2", "backbone_width": 1.0, "init_weights": "imagenet", "image_size": 128,
    "batch_size": 32, "log_every": 50, "data.augment": "resize", "data.random_flip": True,
    "data.synthetic_images_per_class": 30,
    "optimizer.name": "sgd", "optimizer.learning_rate": 0.01, "optimizer.momentum": 0.9,
    "optimizer.weight_decay": 5e-4, "optimizer.schedule": "cosine", "optimizer.warmup_steps": 30,
    "optimizer.decay_boundaries": (), "optimizer.lr_multipliers": (("^(backbone|part_stage)/", 0.1),),
}
EVALUATIONS = 2  # validation evaluations after step 0 (the pretrained start is evaluated too)
# Model selection: the ImageNet features alone reach validation Recall@1 0.98 on the 10
# validation classes, so retrieval rows are chosen by their mAP@R, which does not saturate.
RETRIEVAL = {"eval.protocol": "retrieval", "eval.metric": "cosine", "eval.selection_metric": "map@r"}
REID = {"eval.protocol": "reid", "eval.metric": "euclidean", "eval.selection_metric": "map"}


@dataclasses.dataclass(frozen=True)
class Table:
  """One paper table: `rows` name -> (config argument, overrides); `scorings` name -> overrides of
  the trained config that score it (the first is the training protocol); `columns` (header, path
  "scoring/metric"); `claims` (the paper's claim, (row, scoring) below, (row, scoring) above[, the
  headers it is judged on]), each judged on `claim_metrics` (header, path with "{}" for the side's
  scoring), all of them unless it names some; `paper_numbers` row -> the paper's numbers for it
  (printed beside); `statistics(run, data)` -> more of the line's fields from the chosen model."""
  paper: str
  paper_numbers: dict
  rows: dict
  scorings: dict
  columns: tuple
  claims: tuple
  claim_metrics: tuple
  statistics: Callable[[saved_run.SavedRun, Any], dict] | None = None
  lines_file: str = ""  # the default --out in benchmarks/results/reproduce/ ("" = METHOD.jsonl)


A3M_D = {"a3m.feature_dim": 512, "embedding_dim": 0}  # the paper's d = 512, f_final as the embedding
A3M = Table(
    paper="A3M, Table 1 (Market-1501 re-ID, ResNet-50; paper column: rank-1 / mAP %)",
    paper_numbers={"baseline1": "73.90 / 47.78", "baseline2": "80.07 / 59.13", "att1": "Fig. 5 only",
                   "att2": "Fig. 5 only", "a3m_no_attr_label": "85.21 / 66.42", "a3m": "86.54 / 68.97"},
    rows={
        "baseline1": ("configs/baseline.py:dataset=synthetic", {"embedding_dim": 512}),
        "baseline2": ("configs/a3m.py:dataset=synthetic,variant=baseline2", A3M_D),
        "att1": ("configs/a3m.py:dataset=synthetic,variant=att1", A3M_D),
        "att2": ("configs/a3m.py:dataset=synthetic,variant=att2", A3M_D),
        "a3m_no_attr_label": ("configs/a3m.py:dataset=synthetic,variant=a3m",
                              {**A3M_D, "a3m.use_attribute_labels": False}),
        "a3m": ("configs/a3m.py:dataset=synthetic,variant=a3m", A3M_D),
    },
    scorings={"retrieval": RETRIEVAL, "reid": REID},
    columns=(("R@1", "retrieval/recall@1"), ("R@4", "retrieval/recall@4"), ("mAP@R", "retrieval/map@r"),
             ("re-ID rank-1", "reid/rank1"), ("re-ID mAP", "reid/map"), ("attribute acc.", "attribute_accuracy")),
    claims=tuple((f"{low} < {high}", (low, ""), (high, ""))
                 for low, high in (("baseline1", "baseline2"), ("baseline2", "att1"), ("baseline2", "att2"),
                                   ("att1", "a3m_no_attr_label"), ("att2", "a3m_no_attr_label"),
                                   ("a3m_no_attr_label", "a3m"), ("baseline1", "a3m"))),
    claim_metrics=(("R@1", "retrieval/recall@1"), ("mAP@R", "retrieval/map@r"), ("re-ID rank-1", "reid/rank1"),
                   ("re-ID mAP", "reid/map")),
)

MIDATTR_LAYERS = ("none", "res5", "res4", "res3")
MIDATTR = Table(
    paper=("MidAttr, Market-1501, ResNet-50; paper column: rank-1 / mAP % of the global (Table 4), part "
           "(Table 5) and fused (Tables 6, 2) descriptors"),
    paper_numbers={"none": "81.24 / 60.68; 79.65 / 56.42; 83.82 / 64.07",
                   "res5": "84.59 / 64.89; 83.88 / 61.51; -", "res4": "85.70 / 65.87; 84.65 / 63.48; -",
                   "res3": "86.16 / 66.70; 85.24 / 65.15; 87.89 / 70.04"},
    # The paper's lr 0.01 with its loss weights mu = 5, nu = 4 diverged here (attributes=none, seed 0:
    # loss 1,455 at step 50, validation mAP 0.26 -> 0.08; benchmarks/results/reproduce/calibration.jsonl).
    rows={layer: (f"configs/midattr.py:dataset=synthetic,attributes={layer}",
                  {"midattr.part_dim": 256, "optimizer.learning_rate": 0.002}) for layer in MIDATTR_LAYERS},
    scorings={"fused": {**REID, "midattr.descriptor": "fused"}, "global": {**REID, "midattr.descriptor": "global"},
              "part": {**REID, "midattr.descriptor": "part"}},
    columns=(("global rank-1", "global/rank1"), ("global mAP", "global/map"), ("part rank-1", "part/rank1"),
             ("part mAP", "part/map"), ("fused rank-1", "fused/rank1"), ("fused mAP", "fused/map"),
             ("attribute acc.", "attribute_accuracy")),
    claims=tuple((f"{descriptor}: {low} < {high}", (low, descriptor), (high, descriptor))
                 for descriptor in ("global", "part")
                 for low, high in (*zip(MIDATTR_LAYERS, MIDATTR_LAYERS[1:]), ("none", "res3"))) + tuple(
        (f"{layer}: {descriptor} < fused", (layer, descriptor), (layer, "fused"))
        for layer in ("none", "res3") for descriptor in ("global", "part")),
    claim_metrics=(("rank-1", "{}/rank1"), ("mAP", "{}/map")),
)
# DeML at the paper's d = 512 (configs/deml.py:dataset=synthetic has 128) with unit learners into the
# adversary: Eq. 4's raw ones diverged at FINE_TUNE's SGD 0.01 (grl, seed 0: NaN at step 10); the
# paper's Adam 1e-5 would barely move in 100 steps.
DEML_D = {"embedding_dim": 512, "deml.adversary_input": "unit"}
DEML = Table(
    paper=("DeML, CUB-200-2011, GoogLeNet-V1; paper column: Recall@1 % and Table 4's learner similarity "
           "(Table 4 has J = 8, these rows J = 4)"),
    paper_numbers={"binomial": "U512 52.9 (Table 3)", "no_adversary": "without L_adv (J=8) 52.0, sim 0.92 ± 0.02",
                   "grl": "(I=1,J=4) 56.6; (J=8) 59.0, sim -0.08 ± 0.01", "hinge": "the public code's term: -",
                   "deml": "(I=2,J=4) 61.7"},
    rows={
        "binomial": ("configs/deml.py:dataset=synthetic,I=1,J=1,adversary=none", DEML_D),
        "no_adversary": ("configs/deml.py:dataset=synthetic,I=1,J=4,adversary=none", DEML_D),
        "grl": ("configs/deml.py:dataset=synthetic,I=1,J=4,adversary=grl", DEML_D),
        "hinge": ("configs/deml.py:dataset=synthetic,I=1,J=4,adversary=hinge", DEML_D),
        "deml": ("configs/deml.py:dataset=synthetic,I=2,J=4,adversary=grl", DEML_D),
    },
    scorings={"retrieval": RETRIEVAL},
    columns=(("R@1", "retrieval/recall@1"), ("R@4", "retrieval/recall@4"), ("mAP@R", "retrieval/map@r"),
             ("learner sim", "learners/sim")),
    claims=(("binomial < deml", ("binomial", ""), ("deml", ""), ("R@1", "mAP@R")),
            ("no_adversary < grl", ("no_adversary", ""), ("grl", ""), ("R@1", "mAP@R")),
            ("learner sim: grl < no_adversary", ("grl", ""), ("no_adversary", ""), ("sim",)),
            ("no_adversary < hinge (the public code's term)", ("no_adversary", ""), ("hinge", ""), ("R@1", "mAP@R")),
            ("grl < deml (object attention)", ("grl", ""), ("deml", ""), ("R@1", "mAP@R"))),
    claim_metrics=(("R@1", "retrieval/recall@1"), ("mAP@R", "retrieval/map@r"), ("sim", "learners/sim")),
    statistics=lambda run, data: {"learners": learner_similarity(run, data)},
)
# A2-Net on the creatures' hashing split (all 200 classes: 15 database, 5 validation and 10 query
# images each; chance mAP 0.005), D = 256; an outer iteration is one pass over 640 random training
# images (20 steps), so 100 steps hold 5 code updates, far fewer than ADSH-style training needs:
# the table of record (a2net.jsonl) trains these rows' configs on the frozen backbone for 60 outer
# iterations (benchmarks/a2net_frozen_backbone.py); fine-tuned lines go to a2net_fine_tune.jsonl.
A2NET_BITS = (12, 24, 32, 48)
A2NET_VARIANTS = ("vanilla", "attention", "reconstruction", "a2net")
A2NET_OUTER = {"a2net.transform_dim": 256, "data.subset_size": 640, "data.subset_epochs": 1, "state_update_every": 20}
A2NET = Table(
    paper="A2-Net, Table 2 (CUB-200-2011, ResNet-50; paper column: mAP % at this row's bits)",
    paper_numbers={f"{variant}_{bits}": number for variant, numbers in (
        ("vanilla", ("20.03", "50.33", "61.68", "65.43")), ("attention", ("27.42", "58.17", "68.24", "76.10")),
        ("reconstruction", ("33.31", "60.65", "71.28", "77.10")), ("a2net", ("33.83", "61.01", "71.61", "77.33")))
        for bits, number in zip(A2NET_BITS, numbers)},
    rows={f"{variant}_{bits}": (f"configs/a2net.py:dataset=synthetic,bits={bits},variant={variant}", A2NET_OUTER)
          for bits in A2NET_BITS for variant in A2NET_VARIANTS},
    scorings={"hashing": {"eval.protocol": "hashing"}},
    columns=(("mAP vs Z", "hashing/map"), ("tie-aware", "hashing/map_tie_aware"),
             ("mAP re-encoded", f"hashing/{evaluator_lib.REENCODED}/map"),
             ("tie-aware re-encoded", f"hashing/{evaluator_lib.REENCODED}/map_tie_aware"),
             ("bit corr. test", "bits/test"), ("bit corr. Z", "bits/z")),
    claims=tuple((f"{bits} bits: {low} < {high}", (f"{low}_{bits}", ""), (f"{high}_{bits}", ""), ("mAP", "re-encoded"))
                 for bits in A2NET_BITS
                 for low, high in (*zip(A2NET_VARIANTS, A2NET_VARIANTS[1:]), ("vanilla", "a2net"))) + tuple(
        (f"{bits} bits, Eq. 8: bit corr. a2net < reconstruction", (f"a2net_{bits}", ""),
         (f"reconstruction_{bits}", ""), ("bit corr.",)) for bits in A2NET_BITS),
    claim_metrics=(("mAP", "hashing/map"), ("re-encoded", f"hashing/{evaluator_lib.REENCODED}/map"),
                   ("bit corr.", "bits/test")),
    statistics=lambda run, data: {"bits": bit_correlation(run, data)},
    lines_file="a2net_fine_tune.jsonl",
)

# VAPNet at the paper's lambda = 10, M = 4 and k = 256 (configs/vapnet.py:dataset=synthetic has 0.1, 2
# and 64, for its from-scratch run), E_R = GAP(F) as the paper; the baseline is the same backbone and
# embedding with cross-entropy alone, for the embedding cost (Table 1: "the same with and without").
VAPNET_PAPER = {"vapnet.weight": 10.0, "vapnet.num_views": 4, "vapnet.attribute_dim": 256, "embedding_dim": 0}
VAPNET_ROWS = ("aux_only", "no_mean_encoders", "consistency_only", "full")
VAPNET = Table(
    paper="VAPNet, Table 1 (ResNet-50; paper column: Recall@1 % CUB / Cars)",
    paper_numbers={"baseline": "-", "aux_only": "L_a: 69.5 / 89.3", "no_mean_encoders": "L_a + L_c: 71.4 / 91.2",
                   "consistency_only": "L_c_hat: 74.1 / 92.7", "full": "L_a + L_c_hat: 76.2 / 94.8",
                   "full_lambda_0.1": "Table 7, lambda = 1: 73.8 (CUB)"},
    rows={"baseline": ("configs/baseline.py:dataset=synthetic", {"embedding_dim": 0}),
          **{variant: (f"configs/vapnet.py:dataset=synthetic,variant={variant}", VAPNET_PAPER)
             for variant in VAPNET_ROWS},
          # at lambda = 10 the consistency term collapses the fine-tuned features too (BENCHMARKS.md)
          "full_lambda_0.1": ("configs/vapnet.py:dataset=synthetic,variant=full", {**VAPNET_PAPER, "vapnet.weight": 0.1})},
    scorings={"retrieval": RETRIEVAL},
    columns=(("R@1", "retrieval/recall@1"), ("R@4", "retrieval/recall@4"), ("mAP@R", "retrieval/map@r"),
             ("GFLOP / image", "embedding/gflop_per_image"), ("embed ms / image", "embedding/ms_per_image")),
    claims=tuple((f"{low} < {high}", (low, ""), (high, ""), ("R@1", "mAP@R"))
                 for low, high in (*zip(VAPNET_ROWS, VAPNET_ROWS[1:]), ("aux_only", "full"), ("baseline", "full"),
                                   ("aux_only", "full_lambda_0.1"))),
    claim_metrics=(("R@1", "retrieval/recall@1"), ("mAP@R", "retrieval/map@r")),
    statistics=lambda run, data: {"embedding": embedding_cost(run, data)},
)
TABLES = {"a3m": A3M, "midattr": MIDATTR, "deml": DEML, "a2net": A2NET, "vapnet": VAPNET}


def learner_similarity(run: saved_run.SavedRun, data) -> dict:
  """DeML Table 4's "sim" (and the metric agreement) of the chosen model on the test split,
  `deml_adversary.learner_statistics` of its embedding `[N, I J d]`, the scale-major
  concatenation of the unit learners; {} with one learner per scale."""
  deml = run.config.deml
  if deml.num_branches < 2:
    return {}
  embedding = evaluator_lib.Embedder(run.method, run.config, run.mesh)(data.test, run.params,
                                                                       run.method_state)["embedding"]
  learners = embedding.reshape(len(embedding), deml.num_scales, deml.num_branches, -1)
  return {k: round(v, 4) for k, v in deml_adversary.learner_statistics(learners).items()}


def bit_correlation(run: saved_run.SavedRun, data) -> dict:
  """`a2net_decorrelation.bit_correlations` of the chosen model: the test queries' ("test"), the
  re-encoded database's ("database") and the learned database codes Z's ("z")."""
  embedder = evaluator_lib.Embedder(run.method, run.config, run.mesh)
  correlations = a2net_decorrelation.bit_correlations(embedder, run.params, run.method_state, data.test,
                                                      data.test_gallery)
  return {name: round(value, 4) for name, value in correlations.items()}


def embedding_cost(run: saved_run.SavedRun, data) -> dict:
  """What embedding the test split costs with the chosen model: XLA's FLOP count of one image
  through the jitted `embed_fn` ("gflop_per_image") and the measured wall time of the whole split
  through the evaluation's `Embedder`, after a warm-up call ("ms_per_image")."""
  image = jax.ShapeDtypeStruct((1, run.config.image_size, run.config.image_size, 3), jnp.float32)
  compiled = jax.jit(lambda p, s, x: run.method.embed_fn(p, s, x, run.config)).lower(
      run.params, run.method_state, image).compile()
  embedder = evaluator_lib.Embedder(run.method, run.config, run.mesh)
  embedder(data.test, run.params, run.method_state, attributes=False)
  start = time.perf_counter()
  count = len(embedder(data.test, run.params, run.method_state, attributes=False)["embedding"])
  return {"gflop_per_image": round(compiled.cost_analysis()["flops"] / 1e9, 4),
          "ms_per_image": round((time.perf_counter() - start) * 1000 / count, 3)}


def override(config: ml_collections.ConfigDict, settings: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with the dotted keys of `settings` set; a KeyError names an unknown key."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in settings.items():
    *sections, name = key.split(".")
    node = config
    for section in sections:
      node = node[section]
    if name not in node:
      raise KeyError(f"--set {key}: the config has no key {name!r}; expected one of {sorted(node.keys())}")
    node[name] = value
  config.lock()
  return config


def row_config(table: Table, row: str, seed: int, steps: int, settings: dict) -> ml_collections.ConfigDict:
  """The config of `row` at `seed`: its config file, `FINE_TUNE`, the row's overrides, `settings`."""
  argument, row_settings = table.rows[row]
  path, _, option = argument.partition(":")
  config = importlib.import_module(path[:-3].replace("/", ".")).get_config(option)
  every = max(steps // EVALUATIONS, 1)
  config = override(config, {**FINE_TUNE, "total_steps": steps, "eval_every": every, "checkpoint_every": every,
                             "seed": seed, **row_settings})
  return override(config, {**table.scorings[next(iter(table.scorings))], **settings})


def chosen_validation(workdir: str, step: int) -> dict:
  """The validation metrics the loop wrote for `step` (the checkpoint it chose)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [line for line in map(json.loads, f) if line["split"] == "val" and line["step"] == step]
  return {k: round(v, 4) for k, v in lines[-1].items() if k not in ("split", "step") and "/" not in k}


def run_row(method: str, row: str, seed: int, steps: int, workdir: str, settings: dict) -> dict:
  """Trains `row` of `TABLES[method]` at `seed` in `workdir` and scores its chosen model on every scoring."""
  table = TABLES[method]
  config = row_config(table, row, seed, steps, settings)
  start = time.perf_counter()
  first, *others = table.scorings
  scores = {first: loop.train(config, workdir)}
  run = saved_run.restore(workdir, "best")
  for name in others:
    variant = override(run.config, table.scorings[name])
    data = datasets.load(variant)
    embedder = evaluator_lib.Embedder(run.method, variant, run.mesh)
    scores[name] = evaluator_lib.make_evaluator(data.test, data.test_gallery, embedder).run(
        run.params, run.method_state)
  step = scores[first]["checkpoint_step"]
  line = {"method": method, "row": row, "seed": seed}
  if table.statistics:
    line.update(table.statistics(run, datasets.load(run.config)))
  for name, metrics in scores.items():
    line[name] = {k: round(float(v), 4) for k, v in metrics.items()
                  if ("/" not in k or k.startswith(evaluator_lib.REENCODED)) and k != "checkpoint_step"}
    line[name].pop("attribute_accuracy", None)
  line["attribute_accuracy"] = scores[first].get("attribute_accuracy")
  line.update(checkpoint_step=step, val=chosen_validation(workdir, step), steps=steps,
              seconds=round(time.perf_counter() - start, 1), config=table.rows[row][0],
              settings={k: str(v) for k, v in {**table.rows[row][1], **settings}.items()},
              machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")
  return line


def value(lines: list[dict], row: str, path: str) -> np.ndarray:
  """The values of `path` ("scoring/metric" or a top-level key) over the seeds of `row`."""
  values = []
  for line in lines:
    if line["row"] == row:
      node = line
      for key in path.split("/", 1):  # "hashing/reencoded/map": the scoring, then its metric
        node = node.get(key) if isinstance(node, dict) else None
      if node is not None:
        values.append(node)
  return np.asarray(values, float)


def verdict(low: np.ndarray, high: np.ndarray) -> str:
  """"reproduced" when every `high` seed beats every `low` seed, "not reproduced" when every
  `low` beats every `high`, else "within noise" (the seed ranges overlap); "(1 seed)" is added
  when a side has a single seed, which has no range."""
  if not len(low) or not len(high):
    return "missing"
  if high.min() > low.max():
    result = "reproduced"
  elif low.min() > high.max():
    result = "not reproduced"
  else:
    result = "within noise"
  return result + (" (1 seed)" if min(len(low), len(high)) < 2 else "")


def markdown(table: Table, lines: list[dict]) -> str:
  """The rows' means with their spread (half the seed range) and one verdict line per claim."""
  header = "| row | seeds | " + " | ".join(h for h, _ in table.columns) + " | minutes / seed | paper |"
  out = [header, "|" + "---|" * (len(table.columns) + 4)]
  for row in table.rows:
    seeds = sum(line["row"] == row for line in lines)
    if not seeds:
      continue
    cells = []
    for _, path in table.columns:
      v = value(lines, row, path)
      cells.append(f"{v.mean():.3f} ± {(v.max() - v.min()) / 2:.3f}" if len(v) else "-")
    minutes = value(lines, row, "seconds").mean() / 60
    out.append(f"| {row} | {seeds} | " + " | ".join(cells) + f" | {minutes:.1f} | {table.paper_numbers[row]} |")
  out += ["", "| claim (paper) | " + " | ".join(h for h, _ in table.claim_metrics) + " |",
          "|" + "---|" * (len(table.claim_metrics) + 1)]
  for claim, (low_row, low_scoring), (high_row, high_scoring), *judged in table.claims:
    cells = []
    for header, path in table.claim_metrics:
      if judged and header not in judged[0]:
        cells.append("-")
        continue
      low, high = value(lines, low_row, path.format(low_scoring)), value(lines, high_row, path.format(high_scoring))
      means = " → ".join(f"{v.mean():.3f}" if len(v) else "-" for v in (low, high))
      cells.append(f"{means}: {verdict(low, high)}")
    out.append(f"| {claim} | " + " | ".join(cells) + " |")
  return "\n".join(out)


def read_lines(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def parse_setting(text: str) -> tuple[str, object]:
  """KEY=VALUE with VALUE a Python literal (1e-3, True, (1, 2)) or else a string."""
  key, sep, raw = text.partition("=")
  if not sep:
    raise argparse.ArgumentTypeError(f"--set {text!r}: expected KEY=VALUE")
  try:
    return key, ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return key, raw


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--method", required=True, choices=sorted(TABLES))
  parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
  parser.add_argument("--rows", default="", help="comma-separated rows (default: all of the table)")
  parser.add_argument("--steps", type=int, default=100, help="training steps per row")
  parser.add_argument("--workdir", default="/tmp/reproduce", help="runs go to WORKDIR/METHOD/ROW_sSEED")
  parser.add_argument("--out", default="", help="JSON lines (default benchmarks/results/reproduce/METHOD.jsonl; "
                                                 "a2net: a2net_fine_tune.jsonl)")
  parser.add_argument("--set", action="append", default=[], type=parse_setting, help="KEY=VALUE for every row")
  parser.add_argument("--table", action="store_true", help="print the table of --out; train nothing")
  args = parser.parse_args(argv)
  table = TABLES[args.method]
  out = args.out or os.path.join(REPO, "benchmarks", "results", "reproduce", table.lines_file or f"{args.method}.jsonl")
  rows = args.rows.split(",") if args.rows else list(table.rows)
  unknown = [row for row in rows if row not in table.rows]
  if unknown:
    parser.error(f"--rows: {unknown} are not rows of {args.method}; expected some of {list(table.rows)}")
  if not args.table:
    done = {(line["row"], line["seed"]) for line in read_lines(out)}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    for seed in map(int, args.seeds.split(",")):
      for row in rows:
        if (row, seed) in done:
          continue
        line = run_row(args.method, row, seed, args.steps, os.path.join(args.workdir, args.method, f"{row}_s{seed}"),
                       dict(args.set))
        with open(out, "a") as f:
          f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)
  print(f"{table.paper}\n\n{markdown(table, read_lines(out))}")


if __name__ == "__main__":
  main()
