"""The one-call API: a run trained, restored, re-scored and used to embed images, in four calls."""
import numpy as np
import pytest

import jaxret
from jaxret.data import datasets
from jaxret.data.subset import Subset
from jaxret.eval import evaluator
from tests.training.conftest import read_metrics, tiny_config


def test_train_restore_evaluate_and_embed(tmp_path):
  workdir = str(tmp_path)
  config = tiny_config(eval_every=2, **{"data.synthetic_images_per_class": 8})
  results = jaxret.train(config, workdir)
  run = jaxret.restore(workdir)
  assert run.step == results["checkpoint_step"] and run.checkpoint == "best"
  assert jaxret.evaluate(run) == pytest.approx({k: v for k, v in results.items() if k != "checkpoint_step"})
  val = {m["step"]: m for m in read_metrics(workdir, "val")}[run.step]
  assert jaxret.evaluate(run, split="val")["recall@1"] == pytest.approx(val["recall@1"])
  reid = jaxret.evaluate(run, protocol="reid", metric="euclidean")
  assert {"rank1", "map", "minp"} <= set(reid)
  reranked = jaxret.evaluate(run, protocol="reid", metric="euclidean", rerank=True, rerank_k1=5, rerank_k2=2)
  assert set(reranked) == set(reid) and reranked != reid
  with pytest.raises(ValueError, match=r"\['rerrank'\] are not config.eval keys"):
    jaxret.evaluate(run, protocol="reid", rerrank=True)
  with pytest.raises(ValueError, match="offered for the reid protocol"):
    jaxret.evaluate(run, rerank=True)
  with pytest.raises(ValueError, match="split='train': expected 'test' or 'val'"):
    jaxret.evaluate(run, split="train")

  test = datasets.load(run.config).test
  images = [test[i]["image"] for i in range(5)]
  expected = evaluator.Embedder(run.method, run.config, run.mesh)(Subset(test, range(5)), run.params,
                                                                   run.method_state)["embedding"]
  np.testing.assert_array_equal(jaxret.embed(run, images), expected)
