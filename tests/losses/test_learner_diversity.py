"""DeML's diversity terms between the J learners of a scale against NumPy: Eq. 4's discrepancy,
the public code's contrastive hinge, and Table 4's mean cosine similarity."""
import jax.numpy as jnp
import numpy as np

from jaxret.losses import learner_diversity


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_adversary_discrepancy_sums_ordered_pairs():
  f = np.random.default_rng(0).normal(size=(3, 4, 5))  # B = 3, J = 4, k = 5
  want = np.mean([sum(np.sum((f[n, j] - f[n, k]) ** 2) for j in range(4) for k in range(4)) for n in range(3)])
  np.testing.assert_allclose(learner_diversity.adversary_discrepancy(jnp.asarray(f, jnp.float32)), want, rtol=1e-5)


def test_contrastive_hinge_sums_one_caffe_loss_per_pair_and_similarity():
  x = np.random.default_rng(1).normal(size=(3, 4, 5))
  u = _unit(x)
  pairs = [(n, j, k) for n in range(3) for j in range(4) for k in range(4) if j != k]
  # The public code: one ContrastiveLoss layer (mean over the batch of max(m - d, 0)^2 / 2) per pair j < k.
  hinge = sum(np.mean([max(2.0 - np.linalg.norm(u[n, j] - u[n, k]), 0) ** 2 / 2 for n in range(3)])
              for j in range(4) for k in range(j + 1, 4))
  sim = np.mean([u[n, j] @ u[n, k] for n, j, k in pairs])
  np.testing.assert_allclose(learner_diversity.contrastive_hinge(jnp.asarray(x, jnp.float32)), hinge, rtol=1e-5)
  np.testing.assert_allclose(learner_diversity.mean_learner_similarity(jnp.asarray(x, jnp.float32)), sim, rtol=1e-5)
  # Two antipodal learners are as far apart as unit vectors get: no hinge cost, similarity -1.
  opposite = jnp.asarray([[[1.0, 2.0], [-2.0, -4.0]]])
  np.testing.assert_allclose(learner_diversity.contrastive_hinge(opposite), 0.0, atol=1e-6)
  np.testing.assert_allclose(learner_diversity.mean_learner_similarity(opposite), -1.0, rtol=1e-6)
