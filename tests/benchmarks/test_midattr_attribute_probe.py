"""benchmarks/midattr_attribute_probe.py: the probe reads an attribute from its routed parts only."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import midattr_attribute_probe  # pylint: disable=wrong-import-position


def test_probe_reads_an_attribute_from_its_routed_parts_only():
  rng = np.random.default_rng(0)
  n, sizes = 400, (3, 3)
  attributes = rng.integers(0, 3, (n, 2))
  parts = rng.normal(0, 0.1, (n, 2, 4)).astype(np.float32)
  parts[np.arange(n), 1, attributes[:, 0]] += 1.0  # attribute 0 one-hot in part 1
  parts[np.arange(n), 1, 3] += attributes[:, 1]  # attribute 1 also only in part 1
  routing = np.array([[False, True], [True, False]])  # attribute 0 reads part 1, attribute 1 part 0
  fit = np.arange(n) < 300
  logits = midattr_attribute_probe.fit_probe(parts, attributes, fit, sizes, routing)
  predictions = logits.argmax(-1)
  assert logits.shape == (n, 2, 3)
  assert np.mean(predictions[~fit, 0] == attributes[~fit, 0]) == 1.0
  assert np.mean(predictions[~fit, 1] == attributes[~fit, 1]) < 0.5  # chance 1/3: its signal is not routed to it
