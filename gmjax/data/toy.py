"""Toy 2-D densities: exact samplers and, where known, closed-form log-densities.

The shapes and constants follow the toy data of FFJORD (Grathwohl et al.,
"FFJORD: Free-form continuous dynamics for scalable reversible generative
models", ICLR 2019, ``lib/toy_data.py``), which in turn adapted the toy sets
of WGAN-GP (Gulrajani et al., "Improved training of Wasserstein GANs",
NeurIPS 2017, ``gan_toy.py``). ``25gaussians`` is not in FFJORD and uses the
WGAN-GP constants. Where FFJORD places points deterministically (evenly
spaced angles in ``moons``, ``circles``, ``rings``; fixed counts per
component), the samplers here draw angles and components i.i.d., so samples
are exact i.i.d. draws from the density that FFJORD's generator approximates,
and ``log_prob`` is their true density.

Every density is an object in ``TOY_DENSITIES`` with

* ``sample(rng, n) -> float32 [n, 2]``, numpy, driven by ``rng``;
* ``log_prob(x [..., 2]) -> [...]`` in jax.numpy (jit-able, accepts numpy),
  or ``None`` when the density has no closed form; ``has_log_prob`` tells which;
* ``entropy(rng=None, n=100_000) -> float`` (nats) where ``log_prob`` exists:
  exact when known, else the Monte Carlo estimate ``-mean log p(x_i)``,
  ``x_i ~ p``, whose standard error is ``std(log p) / sqrt(n)`` (about 0.003
  for ``8gaussians`` at the default ``n``). The ``nll_excess`` metric is the
  test NLL minus this entropy.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import i0e, logsumexp

from gmjax.registry import Registry

TOY_DENSITIES: Registry["ToyDensity"] = Registry("toy density")


class ToyDensity:
    """A 2-D density with an exact numpy sampler.

    Subclasses implement ``_sample(rng, n) -> [n, 2]`` (any float dtype). Those
    with a closed-form density subclass ``ClosedFormDensity`` instead.
    """

    name: str = ""
    log_prob = None
    entropy = None

    @property
    def has_log_prob(self) -> bool:
        return self.log_prob is not None

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` i.i.d. draws, float32 ``[n, 2]``; the same ``rng`` state gives the same draws."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng)}"
            )
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        return np.asarray(self._sample(rng, n), dtype=np.float32).reshape(n, 2)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ClosedFormDensity(ToyDensity):
    """A toy density whose ``log_prob`` is known in closed form."""

    def log_prob(self, x):  # [..., 2] -> [...]
        raise NotImplementedError

    def entropy(self, rng: np.random.Generator | None = None, n: int = 100_000) -> float:
        """Monte Carlo entropy ``-(1/n) sum_i log p(x_i)``, ``x_i ~ p``, in nats.

        ``rng=None`` uses ``np.random.default_rng(0)``, so the default is reproducible.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        log_p = np.asarray(self.log_prob(self.sample(rng, n)), dtype=np.float64)
        return float(-log_p.mean())


def _as_float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


# The log-densities are jitted pure functions of (x, parameters): one compilation
# per input shape instead of one per primitive when called eagerly on test sets.
@jax.jit
def _gaussian_mixture_log_prob(x, centers, sd):  # [..., 2], [K, 2], [] -> [...]
    sq = jnp.sum((x[..., None, :] - centers) ** 2, axis=-1)  # [..., K]
    log_norm = jnp.log(centers.shape[0] * 2 * jnp.pi * sd**2)
    return logsumexp(-sq / (2 * sd**2), axis=-1) - log_norm


@jax.jit
def _ring_mixture_log_prob(x, radii, sd):  # [..., 2], [K], [] -> [...]
    var = sd**2
    r = jnp.sqrt(jnp.sum(x**2, axis=-1))[..., None]  # [..., 1]
    log_pk = -((r - radii) ** 2) / (2 * var) + jnp.log(i0e(r * radii / var))  # [..., K]
    return logsumexp(log_pk, axis=-1) - jnp.log(radii.shape[0] * 2 * jnp.pi * var)


@jax.jit
def _checkerboard_log_prob(x):  # [..., 2] -> [...]
    inside = jnp.all((x >= -4.0) & (x < 4.0), axis=-1)
    cell = jnp.floor(x / 2.0)
    dark = jnp.mod(cell[..., 0] + cell[..., 1], 2.0) == 0
    return jnp.where(inside & dark, -math.log(32.0), -jnp.inf).astype(x.dtype)


class GaussianMixture2D(ClosedFormDensity):
    """Equal-weight mixture of isotropic Gaussians.

    ``p(x) = (1/K) sum_k N(x; c_k, sd^2 I_2)``, so
    ``log p(x) = logsumexp_k(-|x - c_k|^2 / (2 sd^2)) - log K - log(2 pi sd^2)``.

    Attributes:
      centers: ``[K, 2]`` component means.
      sd: the common standard deviation of both coordinates.
    """

    def __init__(self, name: str, centers: np.ndarray, sd: float):
        self.name = name
        self.centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)  # [K, 2]
        self.sd = float(sd)

    def _sample(self, rng, n):
        k = rng.integers(len(self.centers), size=n)
        return self.centers[k] + self.sd * rng.standard_normal((n, 2))

    def log_prob(self, x):  # [..., 2] -> [...]
        x = _as_float(x)
        return _gaussian_mixture_log_prob(x, jnp.asarray(self.centers, x.dtype), self.sd)


class RingMixture2D(ClosedFormDensity):
    """Equal-weight mixture of noisy circles centred at the origin.

    Component ``k`` is ``R_k (cos t, sin t) + sd * eps`` with ``t ~ U[0, 2 pi)``
    and ``eps ~ N(0, I_2)``. Integrating the angle out gives the closed form
    ``p_k(x) = exp(-(r^2 + R_k^2) / (2 sd^2)) I_0(r R_k / sd^2) / (2 pi sd^2)``
    with ``r = |x|`` and ``I_0`` the modified Bessel function of the first kind
    (the Rice distribution of ``r``, divided by ``2 pi r``). It is evaluated as
    ``-(r - R_k)^2 / (2 sd^2) + log i0e(r R_k / sd^2) - log(2 pi sd^2)`` with
    ``i0e(z) = exp(-z) I_0(z)``, which does not overflow.

    Attributes:
      radii: ``[K]`` circle radii.
      sd: standard deviation of the Gaussian noise on each coordinate.
    """

    def __init__(self, name: str, radii, sd: float):
        self.name = name
        self.radii = np.asarray(radii, dtype=np.float64).reshape(-1)  # [K]
        self.sd = float(sd)

    def _sample(self, rng, n):
        radius = self.radii[rng.integers(len(self.radii), size=n)]
        angle = rng.uniform(0.0, 2 * np.pi, size=n)
        ring = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        return ring + self.sd * rng.standard_normal((n, 2))

    def log_prob(self, x):  # [..., 2] -> [...]
        x = _as_float(x)
        return _ring_mixture_log_prob(x, jnp.asarray(self.radii, x.dtype), self.sd)


class Checkerboard(ClosedFormDensity):
    """Uniform density on the 8 dark squares of a 4x4 checkerboard.

    FFJORD draws ``x1 ~ U[-2, 2)``, ``x2 ~ U([-2, -1) u [0, 1)) + (floor(x1) mod 2)``
    and multiplies both by 2. The support is therefore the squares
    ``[2i, 2i + 2) x [2j, 2j + 2)`` with ``i, j in {-2, -1, 0, 1}`` and ``i + j``
    even, inside ``[-4, 4)^2``: area ``8 * 4 = 32``, so ``p(x) = 1/32`` on it,
    ``log p = -log 32`` inside and ``-inf`` outside, and the entropy is exactly
    ``log 32``.
    """

    def __init__(self, name: str = "checkerboard"):
        self.name = name
        # Lower-left corners of the 8 squares of side 2.
        self.corners = np.array(
            [(2 * i, 2 * j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0],
            dtype=np.float64,
        )  # [8, 2]

    def _sample(self, rng, n):
        k = rng.integers(len(self.corners), size=n)
        return self.corners[k] + 2.0 * rng.uniform(size=(n, 2))

    def log_prob(self, x):  # [..., 2] -> [...]
        return _checkerboard_log_prob(_as_float(x))

    def entropy(self, rng: np.random.Generator | None = None, n: int = 100_000) -> float:
        """Exactly ``log 32``; ``rng`` and ``n`` are accepted for a uniform interface."""
        return math.log(32.0)


class Moons(ToyDensity):
    """Two interleaved half circles (sklearn ``make_moons``), FFJORD scaling.

    Component 0: ``(cos t, sin t)``; component 1: ``(1 - cos t, 1/2 - sin t)``;
    ``t ~ U[0, pi]``, each component with probability 1/2, plus ``N(0, 0.1^2 I)``
    noise; FFJORD then maps ``x -> 2 x - (1, 0.2)``, so the final noise sd is 0.2.
    No closed-form density (the arc integral has none).
    """

    def __init__(self, name: str = "moons", noise: float = 0.1):
        self.name, self.noise = name, noise

    def _sample(self, rng, n):
        t = rng.uniform(0.0, np.pi, size=n)
        upper = np.stack([np.cos(t), np.sin(t)], axis=-1)
        lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=-1)
        x = np.where((rng.integers(2, size=n) == 0)[:, None], upper, lower)
        x = x + self.noise * rng.standard_normal((n, 2))
        return 2.0 * x - np.array([1.0, 0.2])


class Pinwheel(ToyDensity):
    """Five curved arms (FFJORD ``pinwheel``, after Johnson et al. 2016's SVAE data).

    Arm ``k ~ U{0..4}``; radial coordinate ``a ~ N(1, 0.3^2)``, tangential
    ``b ~ N(0, 0.1^2)``; angle ``phi = 2 pi k / 5 + 0.25 exp(a)``; the point
    ``(a, b)`` is rotated clockwise by ``phi`` and scaled by 2:
    ``x = 2 (a cos phi + b sin phi, -a sin phi + b cos phi)``.
    No closed-form density.
    """

    def __init__(self, name: str = "pinwheel", radial_sd: float = 0.3,
                 tangential_sd: float = 0.1, num_arms: int = 5, rate: float = 0.25):
        self.name = name
        self.radial_sd, self.tangential_sd = radial_sd, tangential_sd
        self.num_arms, self.rate = num_arms, rate

    def _sample(self, rng, n):
        arm = rng.integers(self.num_arms, size=n)
        a = 1.0 + self.radial_sd * rng.standard_normal(n)
        b = self.tangential_sd * rng.standard_normal(n)
        phi = 2 * np.pi * arm / self.num_arms + self.rate * np.exp(a)
        c, s = np.cos(phi), np.sin(phi)
        return 2.0 * np.stack([a * c + b * s, -a * s + b * c], axis=-1)


class TwoSpirals(ToyDensity):
    """Two interleaved spirals (FFJORD ``2spirals``).

    ``s = 3 pi sqrt(u)``, ``u ~ U[0, 1]`` (540 degrees of turn, density of ``s``
    proportional to ``s``); a point on the first spiral is
    ``(-s cos s + j1, s sin s + j2) / 3`` with jitter ``j1, j2 ~ U[0, 0.5]``; the
    second spiral is its negation (each with probability 1/2); finally
    ``N(0, 0.1^2 I)`` noise is added. No closed-form density.
    """

    def __init__(self, name: str = "2spirals"):
        self.name = name

    def _sample(self, rng, n):
        s = 3 * np.pi * np.sqrt(rng.uniform(size=n))
        jitter = 0.5 * rng.uniform(size=(n, 2))
        arm = np.stack([-np.cos(s) * s, np.sin(s) * s], axis=-1) + jitter
        sign = np.where(rng.integers(2, size=n) == 0, 1.0, -1.0)[:, None]
        return sign * arm / 3.0 + 0.1 * rng.standard_normal((n, 2))


class SwissRoll(ToyDensity):
    """2-D swiss roll (sklearn ``make_swiss_roll`` columns 0 and 2, FFJORD scaling).

    ``t = 1.5 pi (1 + 2u)``, ``u ~ U[0, 1]``; ``x = (t cos t, t sin t) / 5 +
    N(0, 0.2^2 I)`` (sklearn's ``noise=1.0`` before FFJORD divides by 5).
    No closed-form density.
    """

    def __init__(self, name: str = "swissroll"):
        self.name = name

    def _sample(self, rng, n):
        t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
        roll = np.stack([t * np.cos(t), t * np.sin(t)], axis=-1)
        return (roll + rng.standard_normal((n, 2))) / 5.0


def _compass_centers(radius: float) -> np.ndarray:
    angles = np.arange(8) * (np.pi / 4)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # [8, 2]


# FFJORD ``8gaussians``: centers 4 (cos(k pi/4), sin(k pi/4)) / 1.414, k = 0..7
# (the 8 compass directions), sd 0.5 / 1.414, equal weights.
EIGHT_GAUSSIANS = GaussianMixture2D("8gaussians", _compass_centers(4.0) / 1.414, 0.5 / 1.414)

# WGAN-GP ``25gaussians``: centers (2i, 2j) / 2.828 for i, j in {-2, ..., 2}
# (a 5x5 grid with spacing 2 / 2.828 ~ 0.707), sd 0.05 / 2.828, equal weights.
_GRID = np.array([(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)])
TWENTY_FIVE_GAUSSIANS = GaussianMixture2D("25gaussians", _GRID / 2.828, 0.05 / 2.828)

# FFJORD ``circles`` (sklearn ``make_circles(factor=0.5, noise=0.08)`` times 3):
# radii 3 and 1.5, noise sd 0.24, equal weights.
CIRCLES = RingMixture2D("circles", radii=(3.0, 1.5), sd=0.24)

# FFJORD ``rings``: radii 3 x {1, 3/4, 1/2, 1/4} = 3, 2.25, 1.5, 0.75, noise sd 0.08,
# equal weights.
RINGS = RingMixture2D("rings", radii=(3.0, 2.25, 1.5, 0.75), sd=0.08)

for _density in (
    Moons(),
    CIRCLES,
    EIGHT_GAUSSIANS,
    TWENTY_FIVE_GAUSSIANS,
    Checkerboard(),
    Pinwheel(),
    TwoSpirals(),
    SwissRoll(),
    RINGS,
):
    TOY_DENSITIES.register(_density.name)(_density)
del _density
