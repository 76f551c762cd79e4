"""experiments/gan.py on images with a feature network: Fréchet distance and, for a
conditional DCGAN, the classifier's class accuracy; a bad feature network is refused."""

import os

import numpy as np
import pytest

from experiments import classifier
from experiments import gan as gan_experiment
from experiments.configs import classifier_fashion_mnist, gan_fashion_mnist
from gmjax import experiment
from gmjax.data import DatasetNotFoundError, load_dataset


def require_fashion_mnist() -> None:
    try:
        load_dataset("fashion_mnist", "test[:1]")
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found: apt-get install dataset-fashion-mnist to run")


def tiny_gan_config(feature_network: str, conditional: bool = True):
    config = gan_fashion_mnist.get_config()
    config.data.train_split = "train[:128]"
    config.data.test_split = "test[:120]"
    config.data.batch_size = 20
    config.model.channels = 4
    config.model.conditional = conditional
    config.train.steps = 2
    config.train.log_every = 1
    config.train.checkpoint_every = 2
    config.train.eval_every = 2
    config.eval.num_test = 120
    config.eval.batch_size = 60
    config.eval.feature_network = feature_network
    return config


@pytest.fixture(scope="module")
def fashion_classifier(tmp_path_factory):
    """A LeNet trained for 2 steps on 64 Fashion-MNIST images: its workdir."""
    require_fashion_mnist()
    workdir = str(tmp_path_factory.mktemp("classifier_fashion_mnist"))
    config = classifier_fashion_mnist.get_config()
    config.data.train_split = "train[:64]"
    config.data.test_split = "test[:64]"
    config.data.batch_size = 32
    config.train.steps = 2
    config.train.log_every = 1
    config.train.eval_every = 2
    config.train.checkpoint_every = 2
    experiment.run(classifier.EXPERIMENT, config, workdir)
    return workdir


def test_a_conditional_dcgan_reports_frechet_distance_and_class_accuracy(fashion_classifier,
                                                                          tmp_path):
    metrics = experiment.run(gan_experiment.EXPERIMENT, tiny_gan_config(fashion_classifier),
                             str(tmp_path))
    assert np.isfinite(metrics["frechet_distance"]) and metrics["frechet_distance"] > 0
    assert 0.0 <= metrics["class_accuracy"] <= 1.0
    assert metrics["feature_samples"] == 120 and "LeNet" in metrics["feature_network"]
    for name in ("kid", "precision", "recall", "inception_score"):
        assert np.isfinite(metrics[name]), name
    assert os.path.isfile(tmp_path / "samples.png")


def test_a_missing_feature_network_is_refused_before_training(tmp_path):
    require_fashion_mnist()
    config = tiny_gan_config(str(tmp_path / "no_classifier"), conditional=False)
    with pytest.raises(experiment.ConfigError, match="classifier_fashion_mnist.py"):
        experiment.run(gan_experiment.EXPERIMENT, config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "checkpoints")
