"""A GAN on the 8-mode ring (radius 1, sd 0.01) of VEEGAN and PacGAN, scored by mode coverage.

    python experiments/gan.py --config experiments/configs/gan_ring.py --workdir runs/gan_ring

MLP generator and critic (3 hidden layers of 128; Lin et al., 2018, use
4 x 400 units), z ~ N(0, I_2), the non-saturating loss, Adam with b1 = 0.5
for both players (Radford et al., 2016) at two rates. Any loss, penalty,
stabilizer or remedy is a flag: ``--config.model.loss=wgan_gp``,
``--config.model.remedy=pacgan --config.model.pack=2``,
``--config.model.loss=hinge --config.model.spectral_norm=True``, ...
``--config.model.conditional=True`` makes a conditional GAN on the mode index.
``gan_config`` is the shared GAN config the other ``gan_*`` configs start from.
"""

import ml_collections

from experiments.configs.common import base_config


def gan_config(data_name: str) -> ml_collections.ConfigDict:
    """Every field ``experiments/gan.py`` reads, with 2-D defaults, for data ``data_name``."""
    config = base_config()
    config.data.name = data_name
    config.data.batch_size = 256

    config.model = ml_collections.ConfigDict()
    config.model.name = "mlp"
    config.model.latent_dim = 2
    config.model.hidden = (128, 128, 128)  # mlp: hidden widths of both players
    config.model.loss = "non_saturating"   # any name in GAN_LOSSES
    config.model.penalty = "default"       # default (the loss's own) | none | gp | dragan | r1 | r2
    config.model.penalty_weight = -1.0     # < 0: the penalty's default (10)
    config.model.clip = -1.0               # weight clipping; < 0: the loss's default
    config.model.label_smoothing = 0.0     # one-sided: real targets 1 - s
    config.model.instance_noise = 0.0      # sigma_0 of noise on the critic's inputs
    config.model.instance_noise_anneal = 0  # critic updates to anneal it to 0 over
    config.model.consensus = 0.0           # gamma of consensus optimization
    config.model.spectral_norm = False     # mlp critic only
    config.model.remedy = "none"  # none | minibatch | pacgan | feature_matching | unrolled
    config.model.pack = 2                  # pacgan: samples per critic input
    config.model.minibatch_kernels = 5     # minibatch: B kernels of dimension 3
    config.model.unroll_steps = 5          # unrolled: critic SGD steps looked ahead
    config.model.unroll_lr = 0.01          # unrolled: their rate
    config.model.conditional = False       # labels into both players: modes (2-D), classes
    config.model.embed_dim = 16            # mlp, conditional: width of the label embedding
    config.model.channels = 32             # dcgan only
    config.model.norm = "pixel"            # dcgan only
    config.model.upsample = "resize"       # dcgan only

    config.train.steps = 3_000   # outer steps: critic_steps critic + 1 generator update
    config.train.critic_steps = 1
    config.train.ema_decay = 0.99  # generator weight average used for evaluation (0: off)
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 500

    config.optim.lr = 1e-3         # generator
    config.optim.critic_lr = 1e-3  # critic
    config.optim.b1 = 0.5

    config.eval = ml_collections.ConfigDict()
    config.eval.num_samples = 2_500  # the PacGAN protocol's sample count
    config.eval.panels = 6           # samples.png: data, evaluations over training, final
    config.eval.num_test = 2_000     # images only
    config.eval.batch_size = 500     # images only
    return config


def get_config() -> ml_collections.ConfigDict:
    return gan_config("ring")
