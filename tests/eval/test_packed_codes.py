"""Packed hash codes: lossless round trip, np.packbits's layout, and the same Hamming mAP packed."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.eval import hashing_metrics
from jaxret.eval.packed_codes import pack_codes, unpack_codes


@pytest.mark.parametrize("bits", [12, 13, 24, 32, 48])
def test_pack_unpack_round_trip_in_packbits_layout(bits):
  codes = np.random.default_rng(bits).choice([-1, 1], size=(11, bits)).astype(np.int8)
  packed = np.asarray(pack_codes(jnp.asarray(codes)))
  assert packed.dtype == np.uint8 and packed.shape == (11, -(-bits // 8))
  np.testing.assert_array_equal(packed, np.packbits(codes > 0, axis=1))
  np.testing.assert_array_equal(np.asarray(unpack_codes(jnp.asarray(packed), bits)), codes)


def test_hamming_map_is_the_same_on_packed_codes():
  rng = np.random.default_rng(0)
  db, query = rng.choice([-1, 1], size=(40, 12)), rng.choice([-1, 1], size=(9, 12))
  db_labels, query_labels = rng.integers(0, 4, 40), rng.integers(0, 4, 9)
  plain = hashing_metrics(query, query_labels, db, db_labels)
  packed = hashing_metrics(np.asarray(pack_codes(jnp.asarray(query))), query_labels,
                           np.asarray(pack_codes(jnp.asarray(db))), db_labels)
  assert plain == packed
