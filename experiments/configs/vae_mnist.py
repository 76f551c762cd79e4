"""A VAE (or IWAE) on dynamically binarized MNIST, IS log-likelihood on held-out images.

    python experiments/vae.py --config experiments/configs/vae_mnist.py \
        --workdir runs/vae_mnist
    python experiments/vae.py --config experiments/configs/vae_mnist.py \
        --workdir runs/iwae50_mnist --config.objective.name=iwae \
        --config.objective.num_samples=50 --config.objective.estimator=dreg

Only the real MNIST *test* set (10,000 images) is on this machine, so the
model trains on ``test[:8000]`` and is evaluated on ``test[8000:]``; the
numbers are therefore not comparable with published MNIST results (trained
on the 60,000 training images). Pass ``--config.data.data_dir`` holding the
full IDX files and ``--config.data.train_split=train
--config.data.test_split=test`` for the standard protocol. The network is the
classic 784-500-500-50 tanh MLP with a Bernoulli decoder.
"""

import ml_collections

from experiments.configs.common import base_config


def vae_image_config() -> ml_collections.ConfigDict:
    """Fields shared by the image VAE configs (see ``experiments/vae.py``)."""
    config = base_config()
    config.data.name = "mnist"
    config.data.batch_size = 100
    config.data.train_split = "train"  # image data sets
    config.data.test_split = "test"

    config.train.steps = 20_000
    config.train.log_every = 100
    config.train.eval_every = 2_000
    config.train.checkpoint_every = 2_000

    config.optim.lr = 1e-3
    config.optim.schedule = "cosine"

    config.model = ml_collections.ConfigDict()
    config.model.name = "vae"          # iwae, iaf_vae, autoencoder, denoising_autoencoder
    config.model.net = "mlp"           # or conv
    config.model.hidden = (500, 500)   # mlp: encoder widths (the decoder mirrors them);
                                       # conv: dense widths after the convolutions
    config.model.activation = "tanh"   # mlp only
    config.model.channels = 32         # conv only
    config.model.latent_dim = 50
    config.model.likelihood = "bernoulli"  # or gaussian (then variance, scale)
    config.model.variance = "fixed"    # gaussian: fixed or learned
    config.model.scale = 1.0           # gaussian: the fixed or initial standard deviation
    config.model.iaf_steps = 2         # iaf_vae only
    config.model.iaf_hidden = (64, 64)
    config.model.context_dim = 16
    config.model.prior = "standard_normal"  # or a vector flow recipe (maf, realnvp, ...)
    config.model.prior_layers = 4
    config.model.prior_hidden = (64, 64)
    config.model.corruption = "gaussian"    # denoising_autoencoder: gaussian or masking
    config.model.noise_level = 0.3

    config.objective = ml_collections.ConfigDict()
    config.objective.name = "elbo"     # or iwae
    config.objective.num_samples = 1   # k: samples per example (IWAE: the bound's k)
    config.objective.estimator = "total"  # total, stl, score, dreg
    config.objective.baseline = "none"    # score: none, running_mean, learned
    config.objective.baseline_decay = 0.9  # score with running_mean
    config.objective.kl = "auto"       # elbo: auto, analytic, mc
    config.objective.beta = 1.0        # elbo: the KL weight (beta-VAE)
    config.objective.binarize = "dynamic"  # a fresh Bernoulli draw of the pixels per step

    config.eval = ml_collections.ConfigDict()
    config.eval.is_samples = 5_000     # importance samples per test example (Burda et al.)
    config.eval.iwae_samples = 50      # k of the reported iwae_k
    config.eval.batch_size = 100       # test examples per compiled evaluation call
    config.eval.num_examples = 0       # bounds and IS on the first n test examples (0: all)
    config.eval.manifold = False       # latent_dim = 2: the decoded grid and the latent scatter
    config.eval.amortization_gap = False  # Cremer et al. (2018) gaps on gap_examples
    config.eval.gap_examples = 100
    config.eval.gap_steps = 500        # Adam steps of the per-example posteriors
    config.eval.gap_lr = 1e-2
    config.eval.gap_samples = 8        # draws per step of the per-example ELBO
    return config


def get_config() -> ml_collections.ConfigDict:
    config = vae_image_config()
    config.data.name = "mnist"
    config.data.train_split = "test[:8000]"
    config.data.test_split = "test[8000:]"
    return config
