"""KL consistency of VAPNet's Eqs. 5-6 against NumPy, with the softmax over attribute dimensions."""
import jax.numpy as jnp
import numpy as np

from jaxret.losses import consistency


def _softmax(z):
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _kl(target, logits):
  p, q = _softmax(target), _softmax(logits)
  return np.sum(p * np.log(p / q), axis=-1)


def test_softmax_kl():
  rng = np.random.default_rng(0)
  target, logits = rng.normal(size=(3, 5, 7)), rng.normal(size=(3, 5, 7))
  got = consistency.softmax_kl(jnp.asarray(target, jnp.float32), jnp.asarray(logits, jnp.float32))
  np.testing.assert_allclose(got, _kl(target, logits), rtol=1e-5)
  assert np.all(np.asarray(got) > 0)
  np.testing.assert_allclose(consistency.softmax_kl(jnp.asarray(target), jnp.asarray(target + 3.0)), 0.0, atol=1e-6)


def test_attribute_consistency_sums_views_and_averages_images():
  rng = np.random.default_rng(1)
  t_local, a_local, t_global, a_global = (rng.normal(size=(4, 3, 6)) for _ in range(4))  # B = 4, M = 3, k = 6
  got = consistency.attribute_consistency(*(jnp.asarray(x, jnp.float32) for x in (t_local, a_local, t_global,
                                                                                   a_global)))
  per_image = [sum(_kl(t_local[b, i], a_local[b, i]) + _kl(t_global[b, i], a_global[b, i]) for i in range(3))
               for b in range(4)]
  np.testing.assert_allclose(got, np.mean(per_image), rtol=1e-5)
