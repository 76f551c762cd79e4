"""A DDPM with a U-Net on Fashion-MNIST (60,000 train / 10,000 test), scaled to [-1, 1].

    python experiments/diffusion.py --config experiments/configs/diffusion_fashion_mnist.py \
        --workdir runs/ddpm_fashion_mnist
    python experiments/diffusion.py --config experiments/configs/diffusion_fashion_mnist.py \
        --workdir runs/ddpm_fashion_mnist \
        --config.eval.feature_network=runs/classifier_fashion_mnist

The second command (the same workdir: it resumes and only evaluates again) adds
the Fréchet distance in the features of the in-repo classifier, trained first with
``python experiments/classifier.py --config
experiments/configs/classifier_fashion_mnist.py --workdir runs/classifier_fashion_mnist``.
``metrics.json`` then holds ``ancestral_*`` (all T steps) and ``ddim_*``
(``eval.ddim_steps``) quality and time side by side. ``bits_per_dim`` is the
variational bound with the discretized decoder on ``eval.nll_examples`` test
images (T network evaluations each).
"""

import ml_collections

from experiments.configs import diffusion_toy


def diffusion_image_config() -> ml_collections.ConfigDict:
    """Fields shared by the image diffusion configs (see ``experiments/diffusion.py``)."""
    config = diffusion_toy.get_config()
    del config.data["num_train"], config.data["num_test"]  # toy-density fields
    del config.model["hidden"]
    config.data.name = "fashion_mnist"
    config.data.batch_size = 128
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.train.steps = 50_000
    config.train.log_every = 100
    config.train.eval_every = 5_000
    config.train.checkpoint_every = 2_000
    config.train.steps_per_call = 10
    config.optim.lr = 2e-4
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_steps = 1_000
    config.optim.grad_clip = 1.0

    config.model.channels = (32, 64, 128)  # U-Net widths per level (28, 14, 7)
    config.model.num_res_blocks = 1
    config.model.embed_dim = 128
    config.model.sigma_min = 0.01          # ncsn and the VE SDE on [-1, 1] images
    config.model.sigma_max = 50.0
    config.eval.step_size = 2e-5           # ncsn: Song and Ermon's eps for images
    config.eval.clip_x0 = 1.0              # ddpm samplers: x0_hat clipped to the data's [-1, 1]
    config.eval.num_samples = 1_000        # with a feature network: samples per sampler
    config.eval.nll_examples = 500
    config.eval.batch_size = 250
    config.eval.feature_network = ""       # a classifier workdir; "" skips the Fréchet distance
    del config.eval["panels"]              # 2-D figures only
    return config


def get_config() -> ml_collections.ConfigDict:
    return diffusion_image_config()
