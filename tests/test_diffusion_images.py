"""experiments/diffusion.py on images: a tiny DDPM U-Net on Fashion-MNIST reports bits/dim from
the bound and, with a feature network, the Fréchet distance and sampling time of ancestral
sampling over all T steps and of DDIM, on the same number of samples, next to its grid."""

import json
import os

import numpy as np
import pytest

from experiments import classifier
from experiments import diffusion
from experiments.configs import classifier_fashion_mnist, diffusion_fashion_mnist
from gmjax import experiment
from gmjax.data import DatasetNotFoundError, load_dataset


def require_fashion_mnist() -> None:
    try:
        load_dataset("fashion_mnist", "test[:1]")
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found: apt-get install dataset-fashion-mnist to run")


@pytest.fixture(scope="module")
def fashion_classifier(tmp_path_factory):
    """A LeNet trained for 2 steps on 64 Fashion-MNIST images: its workdir."""
    require_fashion_mnist()
    workdir = str(tmp_path_factory.mktemp("classifier_fashion_mnist"))
    config = classifier_fashion_mnist.get_config()
    config.data.train_split = "train[:64]"
    config.data.test_split = "test[:64]"
    config.data.batch_size = 32
    config.train.update(steps=2, log_every=1, eval_every=2, checkpoint_every=2)
    experiment.run(classifier.EXPERIMENT, config, workdir)
    return workdir


def tiny_image_config(feature_network: str = ""):
    config = diffusion_fashion_mnist.get_config()
    config.data.train_split = "train[:64]"
    config.data.test_split = "test[:80]"
    config.data.batch_size = 16
    config.train.update(steps=2, log_every=1, eval_every=2, checkpoint_every=2,
                        steps_per_call=1)
    config.optim.warmup_steps = 1
    config.model.channels = (4, 8)
    config.model.embed_dim = 8
    config.model.num_steps = 6
    config.eval.update(ddim_steps=3, num_samples=70, nll_examples=5, batch_size=40,
                       feature_network=feature_network)
    return config


def test_a_ddpm_on_images_compares_its_samplers_on_the_same_samples(fashion_classifier,
                                                                    tmp_path):
    metrics = experiment.run(diffusion.EXPERIMENT, tiny_image_config(fashion_classifier),
                             str(tmp_path))
    saved = json.load(open(tmp_path / "metrics.json"))
    assert saved["frechet_samples"] == 70 and saved["samples_drawn"] == 70
    for sampler in ("ancestral", "ddim"):
        assert np.isfinite(saved[f"{sampler}_frechet_distance"])
        assert saved[f"{sampler}_frechet_distance"] > 0
        assert saved[f"{sampler}_sample_seconds"] > 0
        assert saved[f"{sampler}_sample_seconds_per_image"] == pytest.approx(
            saved[f"{sampler}_sample_seconds"] / 70)
    assert saved["frechet_distance"] == saved["ancestral_frechet_distance"]
    assert saved["sample_seconds"] == saved["ancestral_sample_seconds"]
    # The bound with the discretized decoder, in bits per dimension.
    assert saved["nll_examples"] == 5 and saved["bits_per_dim"] > 0
    assert saved["bits_per_dim"] == pytest.approx(saved["test_nll"] / (784 * np.log(2.0)))
    assert "LeNet" in saved["feature_network"] and metrics["steps"] == 2
    assert os.path.isfile(tmp_path / "samples.png")


@pytest.mark.slow
def test_without_a_feature_network_the_samplers_draw_the_grid(tmp_path):
    require_fashion_mnist()
    config = tiny_image_config()
    config.eval.nll_examples = 2
    metrics = experiment.run(diffusion.EXPERIMENT, config, str(tmp_path))
    assert metrics["samples_drawn"] == 64 and "frechet_distance" not in metrics
    assert metrics["ancestral_sample_seconds"] > 0 and metrics["ddim_sample_seconds"] > 0
    assert os.path.isfile(tmp_path / "samples.png")
