"""launch.embed and launch.search end to end on image files, after a tiny synthetic training run."""
import dataclasses
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from configs import baseline
from jaxret.data import datasets
from jaxret import image_index
from jaxret.eval import evaluator
from jaxret import saved_run
from jaxret.viz import retrieval_grid
from launch import embed, search
from tests.methods.conftest import train_tiny

K = 4
BITS = 12  # the embedding width: 12 bits take 2 bytes, 4 of them padding


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("baseline_run")
  train_tiny(baseline.get_config(), workdir, embedding_dim=BITS)
  return str(workdir)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
  """15 synthetic test images of 3 classes in class folders (nested), as lossless PNG, a few as
  JPEG, plus a text file that is not an image -> (folder, {relative path: uint8 image})."""
  root = tmp_path_factory.mktemp("images")
  config = baseline.get_config()
  config.data.synthetic_images_per_class = 5
  test = datasets.load(config).test
  images = {}
  for i in range(15):
    example = test[i]
    folder = root / "birds" / f"class_{int(example['label'])}"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{i:02d}.jpg" if i % 5 == 4 else f"{i:02d}.PNG"
    Image.fromarray(example["image"]).save(folder / name)
    images[os.path.relpath(folder / name, root)] = example["image"]
  (root / "birds" / "notes.txt").write_text("not an image")
  return str(root), images


@pytest.fixture(scope="module")
def baseline_index(baseline_run, image_dir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("index") / "index.npz")
  assert embed.main(["--workdir", baseline_run, "--images", image_dir[0], "--out", out, "--noprogress"]) == 0
  return out


def test_index_holds_the_run_embeddings_of_every_image_sorted(baseline_run, image_dir, baseline_index):
  root, images = image_dir
  index = image_index.load(baseline_index)
  assert list(index.paths) == sorted(images)  # recursive, sorted, .PNG and .jpg found, notes.txt skipped
  run = saved_run.restore(baseline_run)
  # config.json: the trained config, label spaces filled in by the loop, tuples read back as tuples.
  assert run.config.embedding_dim == BITS and run.config.num_classes == 98 and run.config.eval.ks == (1, 2, 4, 8)
  assert (index.method, index.kind, index.metric, index.checkpoint, index.checkpoint_step) == (
      "baseline", "float", "cosine", "latest", 4)
  assert index.workdir == os.path.abspath(baseline_run) and index.image_root == os.path.abspath(root)
  assert index.config_fingerprint == saved_run.fingerprint(run.config)
  assert index.vectors.dtype == np.float32 and index.vectors.shape == (len(images), index.dim)
  # The PNG files are lossless: their vectors are the evaluator's embeddings of the source images.
  pngs = [i for i, p in enumerate(index.paths) if p.endswith(".PNG")]
  source = [{"image": images[index.paths[i]]} for i in pngs]
  expected = evaluator.Embedder(run.method, run.config, run.mesh)(source, run.params, run.method_state, fields=())
  np.testing.assert_allclose(index.vectors[pngs], expected["embedding"], rtol=1e-5, atol=1e-6)
  best = saved_run.restore(baseline_run, "best")  # one validation, at the end: the best is the last model
  assert best.step == 4 and best.checkpoint == "best"
  jax.tree.map(np.testing.assert_array_equal, best.params, run.params)


def _printed_neighbours(output: str) -> list[tuple[int, float, str]]:
  rows = [line.split("\t") for line in output.splitlines() if "\t" in line]
  return [(int(rank), float(value), path) for rank, value, path in rows]


def test_search_matches_numpy_brute_force_and_draws_grid_and_page(baseline_index, image_dir, tmp_path, capsys):
  root, images = image_dir
  index = image_index.load(baseline_index)
  query = sorted(images)[6]
  png, page = str(tmp_path / "grid.png"), str(tmp_path / "page.html")
  capsys.readouterr()
  search.main(["--index", baseline_index, "--query", os.path.join(root, query), "-k", str(K), "--chunk", "4",
               "--png", png, "--html", page, "--folder_labels", "--thumb", "48"])
  printed = _printed_neighbours(capsys.readouterr().out)

  x = index.vectors / np.linalg.norm(index.vectors, axis=1, keepdims=True)
  similarity = x @ x[list(index.paths).index(query)]
  expected = np.argsort(-similarity, kind="stable")[:K]
  assert [p for _, _, p in printed] == list(index.paths[expected])
  assert printed[0][2] == query  # the query file is in the index: its own nearest neighbour
  np.testing.assert_allclose([v for _, v, _ in printed], similarity[expected], atol=1e-4)
  assert [r for r, _, _ in printed] == list(range(1, K + 1))

  with Image.open(png) as grid:
    pixels = np.asarray(grid.convert("RGB"), np.float32)
    assert grid.size == retrieval_grid.grid_size(1, K, 48)
  assert pixels.std() > 20
  html = open(page, encoding="utf-8").read()
  assert html.count("data:image/png;base64,") == K + 1 and all(p in html for _, _, p in printed)
  same_class = [os.path.dirname(p) == os.path.dirname(query) for _, _, p in printed]
  assert html.count(retrieval_grid.CORRECT_COLOUR) == sum(same_class)
  assert html.count(retrieval_grid.WRONG_COLOUR) == K - sum(same_class)


def test_a_gallery_scanned_in_chunks_gives_the_unchunked_answer(baseline_index):
  index = image_index.load(baseline_index)
  queries = index.vectors[::3]
  whole = image_index.search(index, queries, k=K, chunk=4096)
  for chunk in (3, 5):  # 15 items: 5 chunks of 3; 3 of 5
    chunked = image_index.search(index, queries, k=K, chunk=chunk)
    np.testing.assert_array_equal(chunked.indices, whole.indices)
    # XLA's CPU dot sums a [Q, D] x [D, 3] block in another order than [D, 15]: 1 ulp apart.
    np.testing.assert_allclose(chunked.scores, whole.scores, rtol=1e-6)


@pytest.fixture(scope="module")
def hashing_index(baseline_run, image_dir, tmp_path_factory):
  """A hashing run without a second training (one costs a minute of compilation): a copy of the
  baseline run whose config selects the hashing protocol, which is what makes the tools store and
  search sign codes (the same for A2-Net), and embeds 8 images per batch (two batches here)."""
  workdir = str(tmp_path_factory.mktemp("hashing") / "run")
  shutil.copytree(baseline_run, workdir)
  config = saved_run.load_config(workdir)
  config.unlock()
  config.eval.protocol, config.eval.batch_size = "hashing", 8
  saved_run.save_config(workdir, config)
  out = str(tmp_path_factory.mktemp("hash_index") / "codes.npz")
  embed.main(["--workdir", workdir, "--images", image_dir[0], "--out", out, "--noprogress"])
  return workdir, out


def test_hashing_run_indexes_packed_codes_searched_by_hamming_distance(hashing_index, baseline_index, image_dir,
                                                                      capsys):
  workdir, out = hashing_index
  root, images = image_dir
  index = image_index.load(out)
  assert (index.method, index.kind, index.dim, index.metric) == ("baseline", "packed_bits", BITS, "hamming")
  assert index.vectors.dtype == np.uint8 and index.vectors.shape == (len(images), 2)
  floats = image_index.load(baseline_index)  # the same checkpoint: codes are the signs of its embeddings
  bits = np.unpackbits(index.vectors, axis=1)
  np.testing.assert_array_equal(bits[:, :BITS], floats.vectors >= 0)  # the hashing evaluator's sign convention
  assert not bits[:, BITS:].any()

  query = sorted(images)[2]
  capsys.readouterr()
  search.main(["--index", out, "--query", os.path.join(root, query), "-k", str(K), "--chunk", "4"])
  output = capsys.readouterr().out
  assert "\t-" not in output  # distances, not scores: the query itself is at 0, not -0
  printed = _printed_neighbours(output)
  all_bits = np.unpackbits(index.vectors, axis=1)[:, :BITS]
  hamming = (all_bits != all_bits[list(index.paths).index(query)]).sum(axis=1)
  expected = np.argsort(hamming, kind="stable")[:K]  # ties: smaller index first, like evaluation
  assert [p for _, _, p in printed] == list(index.paths[expected])
  assert [v for _, v, _ in printed] == list(hamming[expected])


def test_missing_paths_and_bad_images_stop_with_the_path(baseline_run, baseline_index, image_dir, tmp_path):
  root, _ = image_dir
  out = str(tmp_path / "x.npz")
  with pytest.raises(SystemExit, match="nowhere_run"):
    embed.main(["--workdir", str(tmp_path / "nowhere_run"), "--images", root, "--out", out])
  (tmp_path / "old_run").mkdir()
  with pytest.raises(SystemExit, match="old_run/config.json does not exist"):
    embed.main(["--workdir", str(tmp_path / "old_run"), "--images", root, "--out", out])
  with pytest.raises(SystemExit, match="no_such_folder"):
    embed.main(["--workdir", baseline_run, "--images", root, "--out", str(tmp_path / "no_such_folder" / "i.npz")])
  with pytest.raises(SystemExit, match="no_images_here"):
    embed.main(["--workdir", baseline_run, "--images", str(tmp_path / "no_images_here"), "--out", out])
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "readme.txt").write_text("no images")
  with pytest.raises(SystemExit, match="holds no image"):
    embed.main(["--workdir", baseline_run, "--images", str(tmp_path / "empty"), "--out", out])
  broken = tmp_path / "broken"
  broken.mkdir()
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(broken / "fine.png")
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(broken / "t.jpg")
  jpeg = (broken / "t.jpg").read_bytes()
  (broken / "t.jpg").unlink()
  (broken / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])  # a real JPEG header, half its data
  with pytest.raises(SystemExit, match="truncated.jpg"):
    embed.main(["--workdir", baseline_run, "--images", str(broken), "--out", out, "--noprogress"])
  with pytest.raises(SystemExit, match="missing_index.npz"):
    search.main(["--index", str(tmp_path / "missing_index.npz"), "--query", str(broken / "fine.png")])
  with pytest.raises(SystemExit, match="truncated.jpg"):
    search.main(["--index", baseline_index, "--query", str(broken / "truncated.jpg")])
  with pytest.raises(SystemExit, match="fine.png' is not a readable .npz"):
    search.main(["--index", str(broken / "fine.png"), "--query", str(broken / "fine.png")])


def test_an_index_of_another_embedding_kind_is_refused_naming_both(hashing_index, baseline_index, image_dir):
  hashing_run, _ = hashing_index
  query = os.path.join(image_dir[0], sorted(image_dir[1])[0])
  with pytest.raises(SystemExit, match=r"method='baseline' kind='float' dim=12 metric='cosine'.*"
                     r"method='baseline' kind='packed_bits' dim=12 metric='hamming'"):
    search.main(["--index", baseline_index, "--query", query, "--workdir", hashing_run])


def test_an_index_of_another_method_or_dim_is_refused_naming_both(baseline_run, baseline_index):
  index, run = image_index.load(baseline_index), saved_run.restore(baseline_run)
  assert image_index.check_compatible(index, "i.npz", run, BITS) == []  # same run: no warning
  other = dataclasses.replace(index, method="deml", dim=64, workdir="/runs/deml")
  with pytest.raises(ValueError, match=r"'i.npz' was built by method='deml' .*dim=64.* \(workdir /runs/deml\), "
                     r"but the query run .* method='baseline' .*dim=12"):
    image_index.check_compatible(other, "i.npz", run, BITS)
  later = dataclasses.replace(index, checkpoint_step=2, workdir="/elsewhere")
  warnings = image_index.check_compatible(later, "i.npz", run, BITS)
  assert any("/elsewhere" in w for w in warnings) and any("index 2, query run 4" in w for w in warnings)
