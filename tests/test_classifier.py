"""The feature classifier: LeNet, shift augmentation, the loss, training, saving and loading."""

import math
import os
import shutil
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import classifier
from experiments.configs import classifier_digits
from gmjax import experiment
from gmjax.data import load_dataset
from gmjax.data.augment import random_shift
from gmjax.models.classifier import (IMAGE_SHAPES, FeatureNetwork, FeatureNetworkError,
                                     build_classifier, load_feature_network)
from gmjax.models.image_metrics import image_metrics
from gmjax.nets.lenet import LeNet
from gmjax.objectives.classification import cross_entropy_loss
from gmjax.training import Checkpointer

DIGITS_TARGET = 0.90  # held-out accuracy of the quick digits classifier (0.95-0.96 measured)


# --- the network, the augmentation and the loss -----------------------------------


def _random_params(model, image_shape, seed=0):
    """Parameters of the right shapes from numpy (compiling flax's initializers takes seconds)."""
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1,) + image_shape))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: 0.1 * rng.normal(size=a.shape).astype(a.dtype), abstract)


def test_lenet_parameter_count_and_outputs():
    model = LeNet()  # 5x5 convs 16-32, 128 features: the MNIST / Fashion-MNIST network
    params = _random_params(model, (28, 28, 1))
    # conv 5*5*1*16 + 16, conv 5*5*16*32 + 32, dense 7*7*32*128 + 128, head 128*10 + 10.
    expected = 416 + 12_832 + 200_832 + 1_290
    assert sum(x.size for x in jax.tree.leaves(params)) == expected

    @jax.jit  # one compilation: eager convolutions compile op by op
    def run(images):
        features = model.apply(params, images, method=LeNet.features)
        from_features = model.apply(params, features, method=LeNet.classify)
        return features, model.apply(params, images), from_features

    features, logits, from_features = run(np.random.default_rng(1).uniform(size=(3, 28, 28, 1)))
    assert features.shape == (3, 128) and logits.shape == (3, 10)
    assert jnp.all(features >= 0) and jnp.any(features > 0)  # after ReLU
    np.testing.assert_allclose(from_features, logits, rtol=1e-6)


def test_lenet_takes_8x8_images_and_dropout_only_touches_the_read_out():
    model = LeNet(kernel_size=3, dropout_rate=0.5)
    params = _random_params(model, (8, 8, 1))
    # Two 2x2 poolings: 8 -> 2, so the dense layer sees 2*2*32 inputs.
    assert params["params"]["hidden"]["kernel"].shape == (128, 128)
    images = np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype(np.float32)

    @jax.jit
    def run(dropout_key):
        plain = model.apply(params, images)
        dropped = model.apply(params, images, deterministic=False, rngs={"dropout": dropout_key})
        return plain, dropped, model.apply(params, images, method=LeNet.features)

    plain, dropped, features = run(jax.random.PRNGKey(2))
    assert not np.allclose(plain, dropped)
    # Dropout sits after the features: they are the same with or without it.
    plain_again, dropped_again, features_again = run(jax.random.PRNGKey(3))
    assert np.array_equal(features, features_again) and np.array_equal(plain, plain_again)
    assert not np.allclose(dropped, dropped_again)


def test_random_shift_moves_each_image_by_its_own_offset_within_range():
    n, s = 400, 2
    images = jnp.zeros((n, 9, 9, 1)).at[:, 4, 4, 0].set(1.0)  # one bright centre pixel
    shifted = random_shift(jax.random.PRNGKey(0), images, s)
    assert shifted.shape == images.shape
    assert np.all(np.asarray(shifted).sum(axis=(1, 2, 3)) == 1.0)  # nothing lost or doubled
    rows, cols = np.nonzero(np.asarray(shifted)[..., 0])[1:]
    offsets = set(zip(rows - 4, cols - 4))
    assert offsets == {(a, b) for a in range(-s, s + 1) for b in range(-s, s + 1)}
    assert np.array_equal(random_shift(jax.random.PRNGKey(0), images, 0), images)


def test_cross_entropy_of_uniform_logits_is_log_num_classes():
    labels = jnp.array([0, 3, 0, 9])
    loss = cross_entropy_loss(lambda params, x, key: jnp.zeros((x.shape[0], 10)))
    value, metrics = loss(None, (jnp.zeros((4, 8, 8, 1)), labels), jax.random.PRNGKey(0))
    assert value == pytest.approx(math.log(10), rel=1e-6)
    assert metrics["accuracy"] == pytest.approx(0.5)  # argmax of ties is class 0


# --- training, saving and loading on sklearn digits -----------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The quick digits classifier, trained once: (workdir, metrics, wall seconds)."""
    workdir = str(tmp_path_factory.mktemp("classifier_digits"))
    config = classifier_digits.get_config()
    start = time.perf_counter()
    metrics = experiment.run(classifier.EXPERIMENT, config, workdir)
    return workdir, metrics, time.perf_counter() - start


def test_quick_digits_classifier_reaches_its_accuracy(digits_run):
    workdir, metrics, seconds = digits_run
    assert metrics["test_accuracy"] >= DIGITS_TARGET
    assert metrics["steps"] == 600 and metrics["num_test"] == 360
    assert seconds < 60
    for name in ("config.json", "metrics.json", "metrics.jsonl", "curves.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    assert Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 600


def test_loaded_network_reproduces_the_trained_one(digits_run):
    workdir, metrics, _ = digits_run
    network = load_feature_network(workdir)
    test = load_dataset("digits", "test")
    features, probs = network.features_and_probs(test.x)
    assert features.shape == (360, 128) and probs.shape == (360, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # The same predictions as at the end of training, to the last example.
    assert np.mean(np.argmax(probs, axis=1) == test.y) == metrics["test_accuracy"]
    # Bitwise the features of the parameters in the last checkpoint.
    state, _ = Checkpointer(os.path.join(workdir, "checkpoints")).restore()
    model = build_classifier(classifier_digits.get_config().model)
    reference = FeatureNetwork(model, state["params"], data_name="digits",
                               image_shape=IMAGE_SHAPES["digits"])
    assert np.array_equal(reference.features(test.x), features)
    # Batching does not change the outputs (the last batch is padded).
    small = load_feature_network(workdir, batch_size=7)
    np.testing.assert_allclose(small.features(test.x), features, rtol=1e-5, atol=1e-6)
    text = network.describe()
    assert "trained on digits train" in text
    assert f"{100 * metrics['test_accuracy']:.2f}% on digits test" in text
    assert workdir in text


def test_images_outside_the_network_scale_or_shape_are_refused(digits_run):
    network = load_feature_network(digits_run[0])
    images = load_dataset("digits", "test").x[:5]
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        network.features(2.0 * images - 1.0)  # a tanh generator's [-1, 1]
    with pytest.raises(ValueError, match="8, 8, 1"):
        network.features(np.zeros((5, 28, 28, 1), np.uint8))
    uint8 = np.round(images * 255).astype(np.uint8)
    np.testing.assert_allclose(network.probs(uint8), network.probs(np.float32(uint8) / 255),
                               atol=1e-6)


def test_image_metrics_tell_real_digits_from_noise_and_collapse(digits_run):
    network = load_feature_network(digits_run[0])
    reference = load_dataset("digits", "test").x  # 360 images
    train = load_dataset("digits", "train")
    noise = np.random.default_rng(0).uniform(size=reference.shape).astype(np.float32)
    key = jax.random.PRNGKey(0)
    kwargs = dict(kid_subsets=5, kid_subset_size=200)
    good = image_metrics(network, train.x[:360], reference, key, sample_labels=train.y[:360],
                         **kwargs)
    bad = image_metrics(network, noise, reference, key, **kwargs)
    collapsed = image_metrics(network, train.x[train.y == 1][:100], reference, key, **kwargs)
    assert good["feature_network"] == network.describe()
    assert good["frechet_distance"] < 0.1 * bad["frechet_distance"]
    assert good["kid"] < 0.1 * bad["kid"]
    assert good["precision"] > 0.6 and bad["precision"] < 0.1
    assert good["recall"] > 0.6 and good["coverage"] > 0.6 and bad["coverage"] < 0.1
    assert good["class_accuracy"] > DIGITS_TARGET  # real digits carry their labels
    assert good["inception_score"] > 5 and "class_accuracy" not in bad
    # Only ones: good-looking samples (precision) of a tenth of the data (recall, IS ~ 1).
    assert collapsed["precision"] > 0.6 and collapsed["recall"] < 0.2
    assert collapsed["inception_score"] < 1.5


def test_a_missing_workdir_names_the_training_command(tmp_path):
    with pytest.raises(FeatureNetworkError, match="the classifier experiment with one of the "
                                                  "configs classifier_mnist, ") as error:
        load_feature_network(tmp_path / "nothing")
    assert f"--workdir {tmp_path / 'nothing'}" in str(error.value)


def test_an_unfinished_run_says_to_finish_it(digits_run, tmp_path):
    workdir = str(tmp_path / "unfinished")
    shutil.copytree(digits_run[0], workdir)
    os.remove(os.path.join(workdir, "metrics.json"))
    with pytest.raises(FeatureNetworkError, match="did not finish") as error:
        load_feature_network(workdir)
    assert f"config classifier_digits and --workdir {workdir}" in str(error.value)


def test_a_corrupt_checkpoint_is_a_clear_error(digits_run, tmp_path):
    workdir = str(tmp_path / "corrupt")
    shutil.copytree(digits_run[0], workdir)
    state_dir = os.path.join(workdir, "checkpoints", "600", "state")
    for root, _, files in os.walk(state_dir):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"not a checkpoint")
    with pytest.raises(FeatureNetworkError, match="could not be read") as error:
        load_feature_network(workdir)
    assert "retrain with the classifier experiment" in str(error.value)


def test_a_bad_split_stops_with_the_valid_choices(tmp_path):
    config = classifier_digits.get_config()
    config.data.train_split = "valid"
    with pytest.raises(experiment.ConfigError, match="Valid splits are train, test"):
        experiment.run(classifier.EXPERIMENT, config, str(tmp_path))


# --- the real feature networks (minutes each) --------------------------------------------


def _train_script(repo_root, workdir, config):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, os.path.join("experiments", "classifier.py"),
                          f"--config={os.path.join('experiments', 'configs', config)}",
                          f"--workdir={workdir}"], cwd=repo_root, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return load_feature_network(workdir)


@pytest.mark.slow
def test_mnist_feature_network_reaches_98_percent_on_held_out_digits(repo_root, tmp_path):
    network = _train_script(repo_root, tmp_path / "mnist", "classifier_mnist.py")
    assert network.test_split == "test[8000:]"
    assert network.test_accuracy >= 0.98


@pytest.mark.slow
def test_fashion_mnist_feature_network_reaches_88_percent(repo_root, tmp_path):
    network = _train_script(repo_root, tmp_path / "fashion", "classifier_fashion_mnist.py")
    assert network.test_split == "test"
    assert network.test_accuracy >= 0.88
