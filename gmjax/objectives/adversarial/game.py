"""A GAN game from config strings: loss x penalty x stabilizers -> the two game losses.

``make_gan_game(generator, critic, latent_dim, loss="hinge", spectral_norm=True, ...)``
validates a ``GanConfig`` and returns a ``GanGame``, whose losses follow the
*stateful* protocol of ``make_minmax_step(..., stateful=True)``:

    critic_loss(critic_params, gen_params, batch, key, game) -> (L_C, (metrics, game'))
    gen_loss(gen_params, critic_params, batch, key, game)    -> (L_G, metrics)

``game`` is the state a GAN carries across steps besides the two players'
parameters, a dict with (only) the entries the configuration needs:

  ``"loss"``      the loss's own state: BEGAN's balance ``{"k": k_t}``;
  ``"updates"``   critic updates so far (int32), for annealed instance noise;
  ``"spectral"``  the critic's spectral-normalization state: the ``u``
                  vectors (and ``sigma``) of its ``flax.linen.SpectralNorm``
                  layers, Flax's ``batch_stats`` collection;

or ``None`` when it needs none. The step replaces it after every critic
update by the critic loss's ``game'`` (floating leaves averaged over
devices). Wiring, with ``critic_variables = critic.init(...)``:

    game = make_gan_game(G, D, latent_dim, loss="wgan", critic_steps=5)
    critic_params, game_state = game.init(critic_variables)
    critic_opt = game.critic_optimizer(optax.adam(1e-4, b1=0.5))  # + clipping
    state = MinMaxState.create(gen_params, critic_params, gen_opt, critic_opt, key,
                               game=game_state)
    step = make_minmax_step(game.critic_loss, game.gen_loss, critic_opt, gen_opt, mesh,
                            critic_steps=game.config.critic_steps, stateful=True)

**Spectral normalization** uses ``flax.linen.SpectralNorm``: the critic's
layers are wrapped in it and its ``__call__`` takes ``update_stats``
(``gmjax.nets.spectral``). Every critic evaluation in the losses runs with
``update_stats=False`` on the stored ``u``, from which Flax performs its
``n_steps`` power iterations; the critic loss also runs the critic once on
one real example with ``update_stats=True`` and returns the iterated ``u``
as the new state, so consecutive critic updates continue one power
iteration (Miyato et al., 2018, Algorithm 1). The critic's parameters are
its variables without ``batch_stats``; ``GanGame.init`` splits them.

Metrics: the BCE losses report the mean ``d_real = D(x)`` and ``d_fake =
D(G(z))``; the other scalar critics ``critic_real`` / ``critic_fake`` (their
mean outputs; BEGAN's are ``L(x)`` / ``L(G(z))``, with ``k`` and the
convergence measure ``convergence``); ``mmd`` its ``mmd2``. A penalty adds
``penalty`` (unweighted), instance noise ``instance_noise`` (``sigma_t``),
consensus ``consensus`` (``1/2 ||v||^2``). The generator reports the fake
half.

**Conditional GANs** (``conditional=True``; Mirza and Osindero, 2014): a
data batch is ``{"x": examples [n, ...], "y": int labels [n]}``, the
generator is called as ``G(z, y)`` and the critic as ``critic(x, y)``. The
fakes take the real batch's labels, so both halves of the critic's batch
have the same label counts and a gradient penalty's real-fake segments join
examples of one label.

Randomness: ``z`` is drawn from ``key`` itself (as many as the batch has
rows), so a critic and a generator loss called with one key see the same
``z``; instance noise on real / fake inputs uses ``fold_in(key, 1)`` /
``fold_in(key, 2)``, penalties ``fold_in(key, 3)``.
"""

from __future__ import annotations

import dataclasses
import functools
from numbers import Integral
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gmjax.objectives.adversarial.fgan import F_DIVERGENCES, FGAN_PREFIX
from gmjax.objectives.adversarial.losses import (GAN_LOSSES, MMD_BANDWIDTHS, AdversarialLoss,
                                                 began_convergence, began_loss, mmd_loss)
from gmjax.objectives.adversarial.penalties import PENALTIES, make_penalty
from gmjax.objectives.adversarial.remedies import feature_matching_loss, unrolled_gen_loss
from gmjax.objectives.adversarial.stabilizers import (add_instance_noise, clip_weights,
                                                      consensus_losses, instance_noise_scale)

PyTree = Any
Metrics = Dict[str, jax.Array]
GameLoss = Callable[[PyTree, PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]
SPECTRAL_COLLECTION = "batch_stats"  # where flax.linen.SpectralNorm keeps u and sigma


def sample_latent(key: jax.Array, n: int, latent_dim: int) -> jax.Array:  # -> [n, latent_dim]
    """``z ~ p_z = N(0, I_d)``, the latent prior of every GAN here."""
    return jax.random.normal(key, (n, latent_dim))


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """What a GAN game is made of; ``validate`` checks it (``make_gan_game`` calls it).

    Attributes:
      loss: a name in ``GAN_LOSSES``.
      penalty: a name in ``PENALTIES`` added to the critic's loss; ``None``:
        the loss's own (``gp`` for ``wgan_gp``, ``dragan`` for ``dragan``,
        else ``none``).
      penalty_weight: its weight; ``None``: the penalty's default (10).
      clip: weight-clipping bound ``c`` on the critic; ``None``: the loss's
        own (0.01 for ``wgan``, else none); 0: no clipping.
      label_smoothing: one-sided smoothing ``s``: real targets ``1 - s``
        (BCE losses: ``minimax``, ``non_saturating``, ``dragan``).
      instance_noise: ``sigma_0`` of the noise added to the critic's inputs.
      instance_noise_anneal: ``T``: ``sigma_t = sigma_0 max(0, 1 - t / T)``
        over the first ``T`` critic updates; 0 keeps ``sigma_0``.
      consensus: ``gamma`` of consensus optimization (0: off).
      spectral_norm: the critic uses ``flax.linen.SpectralNorm`` layers,
        whose power-iteration state the game threads.
      critic_steps: ``k`` critic updates per generator update (>= 1).
      dragan_scale: DRAGAN's noise scale relative to the batch std.
      began_gamma, began_lambda_k: BEGAN's diversity ratio and balance rate.
      mmd_bandwidths: the RBF bandwidths of ``mmd``.
      feature_matching: the generator minimizes the feature-matching loss
        on the critic's sown ``("intermediates", "features")`` (``remedies``).
      unroll_steps: ``k`` of the unrolled GAN: the generator's loss sees
        the critic after ``k`` SGD steps of rate ``unroll_lr``,
        differentiated through (``remedies``; 0: off).
      conditional: batches are ``{"x": ..., "y": labels}`` and both players
        take the labels (module doc).
    """

    loss: str = "non_saturating"
    penalty: Optional[str] = None
    penalty_weight: Optional[float] = None
    clip: Optional[float] = None
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    instance_noise_anneal: int = 0
    consensus: float = 0.0
    spectral_norm: bool = False
    critic_steps: int = 1
    dragan_scale: float = 0.5
    began_gamma: float = 0.5
    began_lambda_k: float = 1e-3
    mmd_bandwidths: Sequence[float] = MMD_BANDWIDTHS
    feature_matching: bool = False
    unroll_steps: int = 0
    unroll_lr: float = 1e-2
    conditional: bool = False

    def adversarial_loss(self) -> AdversarialLoss:
        """The ``AdversarialLoss`` of ``loss``, with this config's hyperparameters."""
        if self.loss.startswith(FGAN_PREFIX) and self.loss not in GAN_LOSSES:
            F_DIVERGENCES.get(self.loss[len(FGAN_PREFIX):])  # names the valid divergences
        if self.loss == "began":
            return began_loss(self.began_gamma, self.began_lambda_k)
        if self.loss == "mmd":
            return mmd_loss(self.mmd_bandwidths)
        return GAN_LOSSES.get(self.loss)

    @property
    def resolved_penalty(self) -> str:
        """The penalty the critic's loss gets: ``penalty``, else the loss's own."""
        return self.penalty if self.penalty is not None else self.adversarial_loss().penalty

    @property
    def resolved_penalty_weight(self) -> float:
        if self.penalty_weight is not None:
            return float(self.penalty_weight)
        return PENALTIES.get(self.resolved_penalty).weight

    @property
    def resolved_clip(self) -> float:
        return float(self.clip) if self.clip is not None else self.adversarial_loss().clip

    def validate(self) -> "GanConfig":
        """Raises ``ValueError`` naming the field and the valid choices; returns ``self``."""
        loss = self.adversarial_loss()  # unknown loss / f-divergence / BEGAN / MMD values
        if self.penalty is not None:
            PENALTIES.get(self.penalty)
            if loss.penalty != "none" and self.penalty != loss.penalty:
                raise ValueError(
                    f"loss {self.loss!r} already includes the penalty {loss.penalty!r}; "
                    f"penalty={self.penalty!r} would replace it: pick a loss without a "
                    f"built-in penalty (e.g. 'wgan' with clip=0 for penalty={self.penalty!r})")
        penalty = self.resolved_penalty
        if self.penalty_weight is not None:
            if self.penalty_weight < 0:
                raise ValueError(f"penalty_weight must be >= 0, got {self.penalty_weight}")
            if penalty == "none":
                raise ValueError(f"penalty_weight={self.penalty_weight} but loss "
                                 f"{self.loss!r} has no penalty; set penalty to one of: "
                                 f"{', '.join(n for n in PENALTIES.names() if n != 'none')}")
        if self.clip is not None and self.clip < 0:
            raise ValueError(f"clip must be >= 0 (0: no weight clipping), got {self.clip}")
        clip = self.resolved_clip
        if clip > 0 and penalty != "none":
            source = "" if self.clip is not None else f", the default of loss {self.loss!r}"
            raise ValueError(
                f"weight clipping (clip={clip}{source}) cannot be combined with the gradient "
                f"penalty {penalty!r}: both constrain the critic's gradient, and clipping "
                f"defeats the penalty's target norm. Use loss='wgan_gp' for WGAN with a "
                f"penalty, or set clip=0")
        if loss.output == "features" and penalty != "none":
            raise ValueError(f"loss {self.loss!r} has a feature-valued critic; gradient "
                             f"penalties need a scalar critic: set penalty='none'")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing > 0 and not loss.smoothing:
            smoothable = [n for n in GAN_LOSSES.names() if GAN_LOSSES.get(n).smoothing]
            raise ValueError(f"label_smoothing needs a loss with real / fake targets "
                             f"({', '.join(smoothable)}); loss {self.loss!r} has none")
        if self.instance_noise < 0:
            raise ValueError(f"instance_noise must be >= 0, got {self.instance_noise}")
        if self.instance_noise_anneal < 0:
            raise ValueError(f"instance_noise_anneal must be >= 0 critic updates, got "
                             f"{self.instance_noise_anneal}")
        if self.instance_noise_anneal > 0 and self.instance_noise == 0:
            raise ValueError("instance_noise_anneal is set but instance_noise is 0")
        if self.consensus < 0:
            raise ValueError(f"consensus must be >= 0, got {self.consensus}")
        if (isinstance(self.critic_steps, bool) or not isinstance(self.critic_steps, Integral)
                or self.critic_steps < 1):
            raise ValueError(f"critic_steps (k critic updates per generator update) must be "
                             f"an integer >= 1, got {self.critic_steps!r}")
        if (isinstance(self.unroll_steps, bool) or not isinstance(self.unroll_steps, Integral)
                or self.unroll_steps < 0):
            raise ValueError(f"unroll_steps (critic steps the unrolled generator loss looks "
                             f"ahead) must be an integer >= 0, got {self.unroll_steps!r}")
        if self.unroll_steps > 0 and not self.unroll_lr > 0:
            raise ValueError(f"unroll_lr must be > 0, got {self.unroll_lr}")
        if self.feature_matching and loss.output != "logit":
            raise ValueError(f"feature_matching reads the critic's hidden features; loss "
                             f"{self.loss!r} has a {loss.output}-valued critic: use a loss "
                             f"with a scalar critic")
        if not self.dragan_scale > 0:
            raise ValueError(f"dragan_scale must be > 0, got {self.dragan_scale}")
        return self


def _as_scalar_outputs(out: jax.Array, n: int) -> jax.Array:  # [n] or [n, 1] -> [n]
    flat = out.reshape(n, -1)
    if flat.shape[1] != 1:
        raise ValueError(f"this loss needs one critic output per example, got shape "
                         f"{out.shape}; feature-valued critics go with loss='mmd'")
    return flat[:, 0]


@dataclasses.dataclass(frozen=True)
class GanGame:
    """A validated GAN configuration and its two game losses (stateful protocol).

    Attributes:
      config: the ``GanConfig``.
      loss: its ``AdversarialLoss``.
      critic_loss, gen_loss: the game losses for ``make_minmax_step(...,
        stateful=True)`` (module doc).
      generator, critic: the Flax modules.
      latent_dim: ``d`` of ``z ~ N(0, I_d)``.
      preprocess: data batch -> the generator's output space.
      critic_loss_through: ``critic_loss`` without the stop-gradient at
        ``G(z)``, what the unrolled GAN differentiates through
        (``remedies.unrolled_gen_loss``).
    """

    config: GanConfig
    loss: AdversarialLoss
    critic_loss: Callable
    gen_loss: Callable
    generator: nn.Module
    critic: nn.Module
    latent_dim: int
    preprocess: Callable[[Any], jax.Array]
    critic_loss_through: Optional[Callable] = None

    def split_batch(self, batch: Any) -> Tuple[Any, Optional[jax.Array]]:
        """``(examples, labels)`` of a data batch; labels ``None`` when unconditional."""
        if not self.config.conditional:
            return batch, None
        if not isinstance(batch, dict) or set(batch) != {"x", "y"}:
            keys = f" with keys {sorted(batch)}" if isinstance(batch, dict) else ""
            raise ValueError(f"a conditional GAN takes batches {{'x': examples, 'y': labels}}, "
                             f"got {type(batch).__name__}{keys}")
        return batch["x"], batch["y"]

    def generate(self, gen_params: PyTree, z: jax.Array,
                 labels: Optional[jax.Array] = None) -> jax.Array:
        """``G(z)``, or ``G(z, y)`` for a conditional game."""
        if labels is None:
            return self.generator.apply(gen_params, z)
        return self.generator.apply(gen_params, z, labels)

    def critic_features(self, critic_params: PyTree, game: PyTree, x: jax.Array,
                        labels: Optional[jax.Array] = None) -> jax.Array:
        """The critic's last hidden features ``[n, k]`` (sown as ``intermediates/features``)."""
        variables = dict(critic_params)
        kwargs: Dict[str, Any] = {}
        if self.config.spectral_norm:
            variables[SPECTRAL_COLLECTION] = game["spectral"]
            kwargs["update_stats"] = False
        args = (x,) if labels is None else (x, labels)
        _, sown = self.critic.apply(variables, *args, mutable=["intermediates"], **kwargs)
        try:
            features = sown["intermediates"]["features"][0]
        except KeyError as e:
            raise ValueError("feature_matching needs a critic that sows its hidden features "
                             "as ('intermediates', 'features') (gmjax.nets.MLPCritic)") from e
        return features.reshape(features.shape[0], -1)

    def init(self, critic_variables: PyTree) -> Tuple[PyTree, PyTree]:
        """``(critic_params, game_state)`` from ``critic.init(...)``'s variables."""
        has_stats = SPECTRAL_COLLECTION in critic_variables
        if self.config.spectral_norm and not has_stats:
            raise ValueError(f"spectral_norm=True but the critic's variables have no "
                             f"{SPECTRAL_COLLECTION!r} collection: wrap its layers in "
                             f"flax.linen.SpectralNorm (gmjax.nets.spectral)")
        if has_stats and not self.config.spectral_norm:
            raise ValueError(f"the critic has a {SPECTRAL_COLLECTION!r} collection (spectral "
                             f"normalization): set spectral_norm=True so the game threads it")
        game: Dict[str, Any] = {}
        if self.loss.init_state is not None:
            game["loss"] = {name: jnp.asarray(v, jnp.float32)
                            for name, v in self.loss.init_state.items()}
        if self.config.instance_noise_anneal > 0:
            game["updates"] = jnp.zeros((), jnp.int32)
        params = critic_variables
        if self.config.spectral_norm:
            params = {k: v for k, v in critic_variables.items() if k != SPECTRAL_COLLECTION}
            game["spectral"] = critic_variables[SPECTRAL_COLLECTION]
        return params, (game or None)

    def critic_optimizer(self, optimizer: optax.GradientTransformation
                         ) -> optax.GradientTransformation:
        """``optimizer``, followed by weight clipping when the config clips."""
        clip = self.config.resolved_clip
        return optax.chain(optimizer, clip_weights(clip)) if clip > 0 else optimizer

    def network(self, critic_params: PyTree, game: PyTree,
                labels: Optional[jax.Array] = None) -> Callable[[jax.Array], jax.Array]:
        """``x -> critic(x)`` (``critic(x, labels)`` when given): the raw network output, with
        the spectral state of ``game``."""
        extra = () if labels is None else (labels,)
        if self.config.spectral_norm:
            variables = {**critic_params, SPECTRAL_COLLECTION: game["spectral"]}
            return lambda x: self.critic.apply(variables, x, *extra, update_stats=False)
        return lambda x: self.critic.apply(critic_params, x, *extra)

    def critic_outputs(self, critic_params: PyTree, game: PyTree, x: jax.Array,
                       labels: Optional[jax.Array] = None) -> jax.Array:
        """What the loss reads: logits ``[n]``, features ``[n, k]`` or BEGAN energies ``[n]``."""
        out = self.network(critic_params, game, labels)(x)
        n = x.shape[0]
        if self.loss.output == "features":
            return out.reshape(n, -1)
        if self.loss.output == "reconstruction":
            if out.shape != x.shape:
                raise ValueError(f"BEGAN's critic is an autoencoder: its output {out.shape} "
                                 f"must have the input's shape {x.shape}")
            return jnp.mean(jnp.abs(x - out).reshape(n, -1), axis=-1)  # L(v) = mean |v - D(v)|
        return _as_scalar_outputs(out, n)

    def refresh_spectral_state(self, critic_params: PyTree, game: PyTree,
                               x: jax.Array, labels: Optional[jax.Array] = None) -> PyTree:
        """The spectral state after the critic's power iterations (run on ``x[:1]``)."""
        variables = {**critic_params, SPECTRAL_COLLECTION: game["spectral"]}
        extra = () if labels is None else (labels[:1],)
        _, updated = self.critic.apply(variables, x[:1], *extra, update_stats=True,
                                       mutable=[SPECTRAL_COLLECTION])
        return updated[SPECTRAL_COLLECTION]

    def noise_scale(self, game: PyTree) -> Any:
        """``sigma_t`` of the instance noise at ``game``'s critic-update count."""
        t = game["updates"] if self.config.instance_noise_anneal > 0 else 0
        return instance_noise_scale(self.config.instance_noise,
                                    self.config.instance_noise_anneal, t)


def make_gan_game(generator: nn.Module, critic: nn.Module, latent_dim: int,
                  config: Optional[GanConfig] = None, *,
                  preprocess: Optional[Callable[[Any], jax.Array]] = None,
                  **fields: Any) -> GanGame:
    """The ``GanGame`` of ``config`` (or of ``GanConfig(**fields)``; fields override config).

    Args:
      generator: ``G``, a Flax module ``z [n, latent_dim] -> x [n, ...]``.
      critic: a Flax module ``x [n, ...] -> outputs`` (logits ``[n]`` or
        ``[n, 1]``; features ``[n, k]`` for ``mmd``; a reconstruction of
        ``x`` for ``began``); with ``spectral_norm``, ``__call__(x, update_stats)``.
      latent_dim: ``d`` of the prior N(0, I_d).
      config: a ``GanConfig``; ``fields`` replace its entries.
      preprocess: maps a data batch into the generator's output space (e.g.
        uint8 pixels to [-1, 1]); identity when ``None``.

    Raises:
      ValueError: an unknown loss, penalty or f-divergence (listing the valid
        ones), or an inconsistent combination (``GanConfig.validate``).
    """
    config = dataclasses.replace(config or GanConfig(), **fields).validate()
    loss = config.adversarial_loss()
    to_inputs = preprocess if preprocess is not None else (lambda x: x)
    penalty_name, weight = config.resolved_penalty, config.resolved_penalty_weight
    penalty = make_penalty(penalty_name, config.dragan_scale)
    smoothing = {"real_label": 1.0 - config.label_smoothing} if config.label_smoothing else {}
    noisy = config.instance_noise > 0
    # The game without its losses: the losses below use its helpers.
    helpers = GanGame(config, loss, None, None, generator, critic, latent_dim, to_inputs)

    def outputs(critic_params, game, x, labels=None):
        return helpers.critic_outputs(critic_params, game, x, labels)

    def with_noise(x, key, which, game):
        if not noisy:
            return x
        return add_instance_noise(jax.random.fold_in(key, which), x,
                                  helpers.noise_scale(game))

    def summary(real_out, fake_out) -> Metrics:
        if loss.probability:
            return {"d_real": jnp.mean(jax.nn.sigmoid(real_out)),
                    "d_fake": jnp.mean(jax.nn.sigmoid(fake_out))}
        if loss.output == "features":
            return {}
        return {"critic_real": jnp.mean(real_out), "critic_fake": jnp.mean(fake_out)}

    def critic_loss(critic_params: PyTree, gen_params: PyTree, batch: Any, key: jax.Array,
                    game: PyTree, through: bool = False
                    ) -> Tuple[jax.Array, Tuple[Metrics, PyTree]]:
        data, labels = helpers.split_batch(batch)                        # labels [n] or None
        real = to_inputs(data)                                           # [n, ...]
        z = sample_latent(key, real.shape[0], latent_dim)                # [n, d]
        fake = helpers.generate(gen_params, z, labels)                   # [n, ...]
        if not through:  # the critic's own update treats G(z) as data
            fake = jax.lax.stop_gradient(fake)
        real, fake = with_noise(real, key, 1, game), with_noise(fake, key, 2, game)
        real_out = outputs(critic_params, game, real, labels)
        fake_out = outputs(critic_params, game, fake, labels)
        state = game["loss"] if loss.init_state is not None else {}
        value = loss.critic(real_out, fake_out, **state, **smoothing)
        metrics = summary(real_out, fake_out)
        if loss.output == "features":
            metrics["mmd2"] = -value
        if loss.output == "reconstruction":
            metrics.update(k=state["k"], convergence=began_convergence(
                real_out, fake_out, config.began_gamma))
        if penalty_name != "none":
            critic_fn = lambda x: outputs(critic_params, game, x, labels)
            p = penalty(critic_fn, real, fake, jax.random.fold_in(key, 3))
            value = value + weight * p
            metrics["penalty"] = p
        if noisy:
            metrics["instance_noise"] = helpers.noise_scale(game)
        new_game = None
        if game is not None:
            new_game = dict(game)
            if loss.init_state is not None:
                new_game["loss"] = loss.update_state(state, real_out, fake_out)
            if "updates" in game:
                new_game["updates"] = game["updates"] + 1
            if config.spectral_norm:
                new_game["spectral"] = helpers.refresh_spectral_state(
                    critic_params, game, real, labels)
        return value, (metrics, new_game)

    def gen_loss(gen_params: PyTree, critic_params: PyTree, batch: Any, key: jax.Array,
                 game: PyTree) -> Tuple[jax.Array, Metrics]:
        data, labels = helpers.split_batch(batch)
        n = jax.tree.leaves(data)[0].shape[0]
        z = sample_latent(key, n, latent_dim)                            # [n, d]
        fake = with_noise(helpers.generate(gen_params, z, labels), key, 2, game)
        fake_out = outputs(critic_params, game, fake, labels)
        if loss.needs_real:
            real = with_noise(to_inputs(data), key, 1, game)
            real_out = jax.lax.stop_gradient(outputs(critic_params, game, real, labels))
            return loss.generator(fake_out, real_out), {}
        metrics = summary(fake_out, fake_out)
        metrics = {k: v for k, v in metrics.items() if k.endswith("fake")}
        return loss.generator(fake_out), metrics

    critic_loss_through = functools.partial(critic_loss, through=True)
    critic_loss = functools.partial(critic_loss, through=False)
    if config.feature_matching:
        def feature_matching_gen_loss(gen_params: PyTree, critic_params: PyTree, batch: Any,
                                      key: jax.Array, game: PyTree
                                      ) -> Tuple[jax.Array, Metrics]:
            data, labels = helpers.split_batch(batch)
            n = jax.tree.leaves(data)[0].shape[0]
            z = sample_latent(key, n, latent_dim)
            fake = with_noise(helpers.generate(gen_params, z, labels), key, 2, game)
            real = with_noise(to_inputs(data), key, 1, game)
            real_features = jax.lax.stop_gradient(
                helpers.critic_features(critic_params, game, real, labels))
            fake_features = helpers.critic_features(critic_params, game, fake, labels)
            return feature_matching_loss(real_features, fake_features), {}

        gen_loss = feature_matching_gen_loss
    if config.unroll_steps > 0:
        gen_loss = unrolled_gen_loss(critic_loss_through, gen_loss,
                                     optax.sgd(config.unroll_lr), config.unroll_steps)
    if config.consensus > 0:
        critic_loss, gen_loss = consensus_losses(critic_loss, gen_loss, config.consensus,
                                                 stateful=True)
    return dataclasses.replace(helpers, critic_loss=critic_loss, gen_loss=gen_loss,
                               critic_loss_through=critic_loss_through)


def make_gan_losses(generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                    loss: str = "non_saturating",
                    preprocess: Optional[Callable[[Any], jax.Array]] = None,
                    **fields: Any) -> Tuple[GameLoss, GameLoss]:
    """The stateless game losses ``(critic_loss, gen_loss)`` for ``make_minmax_step``.

    ``critic_loss(critic_params, gen_params, batch, key) -> (L_C, metrics)`` and
    ``gen_loss(gen_params, critic_params, batch, key) -> (L_G, metrics)``, for
    configurations that carry no state across steps and need no optimizer
    transformation; ``fields`` are ``GanConfig`` fields (``penalty``,
    ``label_smoothing``, ``consensus``, constant ``instance_noise``, ...).
    Configurations with BEGAN's balance, annealed instance noise, spectral
    normalization or weight clipping need ``make_gan_game``.

    For ``minimax`` / ``non_saturating`` the metrics are the mean
    ``d_real = D(x)`` and ``d_fake = D(G(z))`` (1/2 each at the game's
    equilibrium p_g = p_data, Goodfellow et al., Prop. 1).
    """
    game = make_gan_game(generator, discriminator, latent_dim, loss=loss,
                         preprocess=preprocess, **fields)
    config = game.config
    needs = [what for what, needed in (
        ("BEGAN's balance state", game.loss.init_state is not None),
        ("annealed instance noise", config.instance_noise_anneal > 0),
        ("spectral normalization", config.spectral_norm),
        (f"weight clipping (clip={config.resolved_clip})", config.resolved_clip > 0)) if needed]
    if needs:
        raise ValueError(f"loss {loss!r} with these options needs {', '.join(needs)}, which "
                         f"make_gan_losses cannot express: build it with make_gan_game and "
                         f"train with make_minmax_step(..., stateful=True)")

    def critic_loss(critic_params, gen_params, batch, key):
        value, (metrics, _) = game.critic_loss(critic_params, gen_params, batch, key, None)
        return value, metrics

    def gen_loss(gen_params, critic_params, batch, key):
        return game.gen_loss(gen_params, critic_params, batch, key, None)

    return critic_loss, gen_loss
