"""Tests for gmjax.data: toy densities, splits, IDX files, transforms, iterator, registry."""

import gzip
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmjax.data import (
    DATASETS,
    TOY_DENSITIES,
    BatchIterator,
    IDXFormatError,
    binarize_dynamic,
    binarize_static,
    dequantize_uniform,
    inverse_logit_transform,
    load_dataset,
    logit_transform,
    parse_split,
    read_idx,
    scale_uint8,
    stack_batches,
    take_batches,
    write_idx,
)

TOY_NAMES = [
    "moons", "circles", "8gaussians", "25gaussians", "checkerboard",
    "pinwheel", "2spirals", "swissroll", "rings",
]
CLOSED_FORM = ["8gaussians", "25gaussians", "checkerboard", "circles", "rings"]


# ----------------------------------------------------------------------------- toy densities


def test_toy_registry_has_every_density():
    assert sorted(TOY_DENSITIES.names()) == sorted(TOY_NAMES)
    assert sorted(n for n in TOY_NAMES if TOY_DENSITIES.get(n).has_log_prob) == sorted(CLOSED_FORM)
    with pytest.raises(ValueError, match="8gaussians"):
        TOY_DENSITIES.get("9gaussians")


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toy_sampler_shape_dtype_seed(name):
    density = TOY_DENSITIES.get(name)
    x = density.sample(np.random.default_rng(3), 1001)
    assert x.shape == (1001, 2) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, density.sample(np.random.default_rng(3), 1001))
    assert not np.allclose(x, density.sample(np.random.default_rng(4), 1001))
    assert density.sample(np.random.default_rng(0), 0).shape == (0, 2)
    if not density.has_log_prob:
        assert density.log_prob is None and density.entropy is None


# (box half-width, grid spacing) fine enough for each density's smallest scale.
GRIDS = {
    "8gaussians": (5.0, 0.02),
    "25gaussians": (2.0, 0.01),
    "checkerboard": (5.0, 0.05),
    "circles": (4.5, 0.02),
    "rings": (3.6, 0.01),
}


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_toy_density_integrates_to_one(name):
    half, h = GRIDS[name]
    ticks = np.arange(-half + h / 2, half, h)  # cell midpoints, never on a checkerboard edge
    grid = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1)  # [m, m, 2]
    grid = grid.astype(np.float32)
    log_p = np.asarray(TOY_DENSITIES.get(name).log_prob(grid), np.float64)
    assert log_p.shape == grid.shape[:2]
    mass = np.exp(log_p).sum() * h * h
    assert abs(mass - 1.0) < 1e-3, mass


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_toy_entropy_matches_mean_log_prob(name):
    density = TOY_DENSITIES.get(name)
    n = 100_000
    entropy = density.entropy(np.random.default_rng(1), n=n)
    log_p = np.asarray(density.log_prob(density.sample(np.random.default_rng(2), n)), np.float64)
    assert np.all(np.isfinite(log_p))
    stderr = math.sqrt(2.0) * log_p.std() / math.sqrt(n)
    assert abs(entropy + log_p.mean()) <= 5 * stderr + 1e-6, (entropy, -log_p.mean(), stderr)


@pytest.mark.parametrize(
    "name, k, sd", [("8gaussians", 8, 0.5 / 1.414), ("25gaussians", 25, 0.05 / 2.828)]
)
def test_mixture_entropy_close_to_separated_components(name, k, sd):
    # Well separated equal-weight components: H = log K + log(2 pi e sd^2), up to overlap.
    separated = math.log(k) + math.log(2 * math.pi * math.e * sd**2)
    entropy = TOY_DENSITIES.get(name).entropy(np.random.default_rng(0), n=200_000)
    assert abs(entropy - separated) < 0.01


def test_checkerboard_exact():
    board = TOY_DENSITIES.get("checkerboard")
    assert board.entropy() == pytest.approx(math.log(32.0), abs=1e-12)
    x = board.sample(np.random.default_rng(0), 20_000)
    log_p = np.asarray(board.log_prob(x))
    np.testing.assert_allclose(log_p, -math.log(32.0), rtol=1e-6)
    assert x.min() >= -4 and x.max() < 4
    # Dark squares (cell indices with even sum) only; white squares and the outside get -inf.
    cells = np.floor(x / 2).astype(int)
    assert np.all((cells.sum(axis=1) % 2) == 0)
    assert len({tuple(c) for c in cells}) == 8
    outside = np.array([[1.0, -1.0], [-3.0, 3.0], [5.0, 0.0], [0.5, 4.0], [4.0, 1.0]], np.float32)
    assert np.all(np.isneginf(np.asarray(board.log_prob(outside))))
    inside = np.array([[1.0, 1.0], [-1.0, -1.0], [-3.0, -3.0], [3.0, -1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(board.log_prob(inside)), -math.log(32.0), rtol=1e-6)


def test_eight_gaussians_cluster_at_documented_centers():
    n, sd = 80_000, 0.5 / 1.414
    angles = np.arange(8) * np.pi / 4
    centers = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1) / 1.414
    x = TOY_DENSITIES.get("8gaussians").sample(np.random.default_rng(5), n).astype(np.float64)
    nearest = np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    for k in range(8):
        members = x[nearest == k]
        assert abs(len(members) / n - 1 / 8) < 0.01
        np.testing.assert_allclose(members.mean(axis=0), centers[k], atol=0.015)
        np.testing.assert_allclose(members.std(axis=0), sd, rtol=0.03)


def test_ring_log_prob_matches_angle_quadrature():
    # The Bessel closed form against direct integration over the circle's angle.
    for name in ("circles", "rings"):
        density = TOY_DENSITIES.get(name)
        points = density.sample(np.random.default_rng(0), 7).astype(np.float64)
        points = np.concatenate([points, [[0.0, 0.0], [0.4, -0.2]]])
        theta = np.linspace(0, 2 * np.pi, 20_001)[:-1]
        var = density.sd**2
        expected = []
        for p in points:
            comp = []
            for radius in density.radii:
                on_ring = radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)
                sq = ((p - on_ring) ** 2).sum(axis=1)
                comp.append(np.mean(np.exp(-sq / (2 * var))) / (2 * np.pi * var))
            expected.append(np.log(np.mean(comp)))
        got = np.asarray(density.log_prob(points.astype(np.float32)), np.float64)
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_gaussian_mixture_log_prob_pointwise():
    density = TOY_DENSITIES.get("8gaussians")
    x = np.array([[0.3, -1.2], [2.8, 0.1], [-7.0, 7.0]])
    var = density.sd**2
    dens = np.zeros(len(x))
    for c in density.centers:
        dens += np.exp(-((x - c) ** 2).sum(1) / (2 * var)) / (2 * np.pi * var) / 8
    got = np.asarray(density.log_prob(x.astype(np.float32)))
    np.testing.assert_allclose(got, np.log(dens), rtol=1e-5)


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_toy_log_prob_jits_and_takes_numpy_and_jax(name):
    density = TOY_DENSITIES.get(name)
    x = density.sample(np.random.default_rng(0), 64)
    eager = np.asarray(density.log_prob(x))
    jitted = np.asarray(jax.jit(density.log_prob)(jnp.asarray(x)))
    assert eager.shape == (64,)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)


def test_toy_sample_means_match_their_formulas():
    n = 100_000
    # moons: arc means (0, 2/pi) and (1, 1/2 - 2/pi), mapped by 2x - (1, 0.2): mean (0, 0.3).
    moons = TOY_DENSITIES.get("moons").sample(np.random.default_rng(0), n)
    np.testing.assert_allclose(moons.mean(axis=0), [0.0, 0.3], atol=0.02)
    # swissroll: t ~ U[1.5 pi, 4.5 pi]: E[t cos t] = 2, E[t sin t] = 2 / (3 pi); divided by 5.
    roll = TOY_DENSITIES.get("swissroll").sample(np.random.default_rng(0), n)
    np.testing.assert_allclose(roll.mean(axis=0), [0.4, 2 / (3 * np.pi) / 5], atol=0.02)
    # 2spirals and pinwheel are symmetric about the origin.
    for name in ("2spirals", "pinwheel"):
        x = TOY_DENSITIES.get(name).sample(np.random.default_rng(0), n)
        np.testing.assert_allclose(x.mean(axis=0), [0.0, 0.0], atol=0.03)


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize(
    "split, n, expected",
    [
        ("test", 10_000, (0, 10_000)),
        ("test[:80%]", 10_000, (0, 8_000)),
        ("test[80%:]", 10_000, (8_000, 10_000)),
        ("train[:5000]", 60_000, (0, 5_000)),
        ("train[-100:]", 60_000, (59_900, 60_000)),
        ("train[10:-10]", 100, (10, 90)),
        ("train[:50%]", 5, (0, 3)),  # 2.5 rounds up
        ("train[-20%:]", 1797, (1438, 1797)),  # 359.4 rounds to 359
        ("train[:200000]", 10, (0, 10)),
    ],
)
def test_split_slicing(split, n, expected):
    sl = parse_split(split).slice(n)
    assert (sl.start, sl.stop) == expected


@pytest.mark.parametrize(
    "split", ["validation", "test[:80", "test[a:b]", "test[:150%]", "test[1.5%:]", "", "train[5]"]
)
def test_bad_split_strings(split):
    with pytest.raises(ValueError, match="train, test"):
        parse_split(split)


def test_empty_split_is_an_error():
    with pytest.raises(ValueError, match="selects no examples"):
        parse_split("test[50%:50%]").slice(100)


# ----------------------------------------------------------------------------- IDX


def test_idx_reads_hand_written_file(tmp_path):
    # uint8 [2, 3]: magic 00 00 08 02, dims 2 and 3 as big-endian uint32, then 6 bytes.
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255])
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    for name in ("a.idx", "a.idx.gz"):
        x = read_idx(tmp_path / name)
        assert x.dtype == np.uint8
        np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 255]])
    # int32 [2]: big-endian 1 and -2.
    raw = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE])
    (tmp_path / "b.idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), np.array([1, -2], np.int32))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    x = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / f"x-idx3{suffix}", x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    y = read_idx(path)
    assert y.dtype == np.dtype(dtype) and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_idx_truncated_and_corrupt_files_name_the_file(tmp_path):
    x = np.arange(100, dtype=np.uint8).reshape(4, 25)
    raw = write_idx(tmp_path / "full", x).read_bytes()
    cases = {
        "cut_data": raw[:-1],
        "cut_header": raw[:6],
        "long": raw + b"\x00",
        "magic": b"\x01" + raw[1:],
        "type": raw[:2] + b"\x07" + raw[3:],
    }
    messages = {
        "cut_data": "truncated IDX data",
        "cut_header": "truncated IDX header",
        "long": "trailing bytes",
        "magic": "not an IDX file",
        "type": "unknown IDX element type",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IDXFormatError, match=messages[name]) as err:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)
    gz = gzip.compress(raw)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(IDXFormatError, match="gzip") as err:
        read_idx(tmp_path / "cut.gz")
    assert "cut.gz" in str(err.value)


# ----------------------------------------------------------------------------- transforms


def test_logit_transform_log_det_matches_jacobian():
    x = jnp.array([[0.0, 0.1, 0.5, 0.93, 1.0]])
    y, log_det = logit_transform(x, alpha=0.05)
    jac = jax.jit(jax.jacfwd(lambda v: logit_transform(v[None], alpha=0.05)[0][0]))(x[0])
    sign, logabsdet = jnp.linalg.slogdet(jac)
    assert sign == 1 and log_det.shape == (1,)
    np.testing.assert_allclose(log_det[0], logabsdet, rtol=1e-5)
    # Closed form at x = 0.5: p = 0.5, dy/dx = 0.9 / 0.25 = 3.6.
    _, half = logit_transform(jnp.full((1, 1), 0.5))
    np.testing.assert_allclose(half, [math.log(3.6)], rtol=1e-6)
    np.testing.assert_allclose(y[0, 2], 0.0, atol=1e-6)


def test_logit_transform_sums_per_example_over_image_axes():
    x = jax.random.uniform(jax.random.key(0), (3, 2, 2, 1))
    _, log_det = logit_transform(x)
    assert log_det.shape == (3,)
    jacobian = jax.jit(jax.jacfwd(lambda v: logit_transform(v[None])[0][0]))
    for i in range(3):
        jac = jacobian(x[i]).reshape(4, 4)
        np.testing.assert_allclose(log_det[i], jnp.linalg.slogdet(jac)[1], rtol=1e-5)


def test_logit_transform_inverse_round_trip():
    x = jax.random.uniform(jax.random.key(1), (4, 6))
    y, fwd = logit_transform(x, alpha=1e-3)
    x_back, inv = inverse_logit_transform(y, alpha=1e-3)
    np.testing.assert_allclose(x_back, x, atol=2e-5)
    np.testing.assert_allclose(fwd + inv, 0.0, atol=2e-3)
    np.testing.assert_allclose(jax.jit(inverse_logit_transform)(y)[0].shape, x.shape)


def test_dequantize_uniform_stays_in_its_bin():
    x = jnp.tile(jnp.arange(256, dtype=jnp.uint8), 1000)
    u = np.asarray(dequantize_uniform(jax.random.key(0), x))
    k = np.asarray(x, np.float64)
    assert u.dtype == np.float32
    assert np.all(u >= k / 256) and np.all(u < (k + 1) / 256)
    # The offset within each bin is U[0, 1): mean 1/2, variance 1/12.
    frac = u.astype(np.float64) * 256 - k
    assert abs(frac.mean() - 0.5) < 0.005 and abs(frac.var() - 1 / 12) < 0.003
    seventeen = np.asarray(dequantize_uniform(jax.random.key(1), jnp.arange(17), num_bins=17))
    assert np.all(np.floor(seventeen * 17 + 1e-6) == np.arange(17))


def test_scaling_and_binarization():
    scaled = scale_uint8(np.array([0, 51, 255], np.uint8))
    np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0], rtol=1e-6)
    x = np.array([[0.0, 0.3, 0.5, 0.7, 1.0]])
    np.testing.assert_array_equal(binarize_static(x, 0.5), [[0, 0, 0, 1, 1]])
    grey = np.full((200_000,), 0.3)
    a = binarize_static(grey, np.random.default_rng(0))
    np.testing.assert_array_equal(a, binarize_static(grey, np.random.default_rng(0)))
    assert set(np.unique(a)) == {0.0, 1.0} and abs(a.mean() - 0.3) < 0.005
    b = np.asarray(jax.jit(binarize_dynamic)(jax.random.key(0), jnp.asarray(grey, jnp.float32)))
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.3) < 0.005


# ----------------------------------------------------------------------------- iterator


def test_iterator_batch_formula_and_purity():
    data = {"x": np.arange(100) * 10, "y": np.arange(100)}
    it = BatchIterator(data, batch_size=20, seed=7)
    perm1 = np.random.default_rng([7, 1]).permutation(100)
    np.testing.assert_array_equal(it.batch(7)["y"], perm1[40:60])  # step 7 = epoch 1, block 2
    np.testing.assert_array_equal(it.batch(7)["x"], it.batch(7)["y"] * 10)
    first = [it.batch(s)["y"] for s in range(25)]
    fresh = BatchIterator(data, batch_size=20, seed=7)
    for s in (17, 3, 24, 0):
        np.testing.assert_array_equal(fresh.batch(s)["y"], first[s])
    resumed = BatchIterator(data, batch_size=20, seed=7, start_step=11)
    for s, batch in zip(range(11, 16), resumed):
        np.testing.assert_array_equal(batch["y"], first[s])
    assert not np.array_equal(BatchIterator(data, 20, seed=8).batch(0)["y"], first[0])


def test_iterator_sees_every_example_once_per_epoch():
    it = BatchIterator(np.arange(120), batch_size=8, seed=0)
    assert it.steps_per_epoch == 15
    epochs = [np.concatenate([it.batch(e * 15 + s) for s in range(15)]) for e in range(3)]
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(120))
    assert not np.array_equal(epochs[0], epochs[1])


def test_iterator_remainder():
    dropped = BatchIterator(np.arange(10), batch_size=4, seed=1)
    assert dropped.steps_per_epoch == 2
    seen = np.concatenate([dropped.batch(0), dropped.batch(1)])
    assert len(np.unique(seen)) == 8 and all(len(dropped.batch(s)) == 4 for s in range(6))
    kept = BatchIterator(np.arange(10), batch_size=4, seed=1, drop_remainder=False)
    assert kept.steps_per_epoch == 3 and [len(kept.batch(s)) for s in range(4)] == [4, 4, 2, 4]
    one_epoch = np.concatenate([kept.batch(s) for s in range(3)])
    np.testing.assert_array_equal(np.sort(one_epoch), np.arange(10))


def test_iterator_process_slices_partition_global_batch():
    data = (np.arange(64), np.arange(64) % 5)
    whole = BatchIterator(data, batch_size=16, seed=3)
    parts = [BatchIterator(data, 16, seed=3, process_index=p, process_count=4) for p in range(4)]
    assert parts[0].local_batch_size == 4
    for step in (0, 1, 5, 9):
        local = [p.batch(step) for p in parts]
        assert all(b[0].shape == (4,) for b in local)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in local]), whole.batch(step)[0])
        np.testing.assert_array_equal(np.concatenate([b[1] for b in local]), whole.batch(step)[1])
    with pytest.raises(ValueError, match="divisible by process_count 3"):
        BatchIterator(data, batch_size=16, process_index=0, process_count=3)
    with pytest.raises(ValueError, match="process_index"):
        BatchIterator(data, batch_size=16, process_index=4, process_count=4)


def test_iterator_errors_and_stacking():
    with pytest.raises(ValueError, match="same leading size"):
        BatchIterator((np.zeros(5), np.zeros(6)), batch_size=2)
    with pytest.raises(ValueError, match="larger than"):
        BatchIterator(np.zeros(5), batch_size=6)
    it = BatchIterator({"x": np.zeros((50, 3)), "y": np.arange(50)}, batch_size=10)
    stacked = stack_batches([it.batch(s) for s in range(4)])
    assert stacked["x"].shape == (4, 10, 3) and stacked["y"].shape == (4, 10)
    np.testing.assert_array_equal(stacked["y"][2], it.batch(2)["y"])
    expected = stack_batches([it.batch(3), it.batch(4)])["y"]
    np.testing.assert_array_equal(take_batches(it, 3, 2)["y"], expected)
    assert len(list(itertools.islice(iter(it), 7))) == 7


# ----------------------------------------------------------------------------- registry


def test_dataset_registry_names():
    assert sorted(DATASETS.names()) == sorted(TOY_NAMES + ["digits", "mnist", "fashion_mnist",
                                                           "wine", "breast_cancer"])
    with pytest.raises(ValueError, match="fashion_mnist"):
        load_dataset("cifar10", "train")


def test_toy_dataset_splits():
    train = load_dataset("8gaussians", "train", seed=0)
    test = load_dataset("8gaussians", "test", seed=0)
    assert train.x.shape == (50_000, 2) and test.x.shape == (10_000, 2) and train.y is None
    assert train.density is TOY_DENSITIES.get("8gaussians") and len(test) == 10_000
    # No test point is a train point; the test set does not depend on the seed.
    assert not set(map(tuple, train.x[:5000])) & set(map(tuple, test.x))
    np.testing.assert_array_equal(load_dataset("8gaussians", "test", seed=5).x, test.x)
    np.testing.assert_array_equal(load_dataset("8gaussians", "train", seed=0, n=100).x,
                                  load_dataset("8gaussians", "train", seed=0, n=100).x)
    assert not np.array_equal(load_dataset("8gaussians", "train", seed=1, n=100).x,
                              load_dataset("8gaussians", "train", seed=0, n=100).x)
    assert len(load_dataset("moons", "test[:80%]")) == 8_000
    nll = -float(np.mean(test.density.log_prob(test.x)))
    assert abs(nll - test.density.entropy()) < 0.05


def test_digits_dataset():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.x.shape == (1437, 8, 8, 1) and test.x.shape == (360, 8, 8, 1)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32
    assert train.x.min() == 0.0 and train.x.max() == 1.0 and train.num_levels == 17
    levels = train.x * 16
    np.testing.assert_array_equal(levels, np.round(levels))
    assert set(np.unique(test.y)) == set(range(10))
    assert len(load_dataset("digits", "test[:50%]")) == 180
    assert len(load_dataset("digits", "train", n=100)) == 100
