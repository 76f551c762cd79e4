"""The Clayton-copula target of TemperFlow: 2^8 = 256 modes in p = 8 ... 64 dimensions.

Qiu and Wang (2024), "Efficient multimodal sampling via tempered distribution
flow", JASA, Section 5.1: a p-dimensional distribution with Clayton copula of
parameter theta (default 2) and marginals

    F_j = 0.7 N(-1, 0.2^2) + 0.3 N(1, 0.2^2)    for j < 8  (bimodal),
    F_j = N(0, 0.5^2)                           for j >= 8,

so the density has one mode per sign pattern of the first eight coordinates,
256 at every p. Its density is (Sklar)

    p(x) = c(F_1(x_1), ..., F_p(x_p)) prod_j f_j(x_j),

with the d-dimensional Clayton copula density (d = p)

    c(u) = prod_{k=0}^{d-1} (1 + k theta) * (prod_j u_j)^{-(1+theta)}
           * (sum_j u_j^{-theta} - d + 1)^{-(d + 1/theta)}

(the d-th derivative of the generator inverse psi(t) = (1 + t)^{-1/theta}:
McNeil and Neslehova, 2009, Ann. Statist. 37, "Multivariate Archimedean
copulas, d-monotone functions and l1-norm symmetric distributions",
Proposition 4.2; Nelsen, 2006, "An Introduction to Copulas", Section 4.6).
It is normalized (the reference TensorFlow code of the paper drops the
constant prod (1 + k theta), which only shifts log p), so
``log_normalizer = 0``. Everything is computed from log u_j = log F_j(x_j)
(``log_ndtr``), with

    log(sum_j u_j^{-theta} - d + 1) = log(1 + sum_j expm1(-theta log u_j)),

evaluated as ``log1p`` of the sum while the largest -theta log u_j is moderate
and as ``M + log(sum_j exp(a_j - M) - (d - 1) exp(-M))`` (M = max_j a_j) beyond,
so that p = 64 works in float32 and far-out points (|x| ~ 10, where
log u ~ -1000) keep finite values and gradients.

Exact samples by Marshall and Olkin (1988, JASA, "Families of multivariate
distributions"): with V ~ Gamma(1/theta, 1) and E_j ~ Exp(1) iid,
U_j = (1 + E_j / V)^{-1/theta} has the Clayton copula, and X_j = F_j^{-1}(U_j).
log U_j = -softplus(log E_j - log V) / theta is formed in log space (V as
chi^2_1 / 2 when theta = 2, else ``loggamma``) and 1 - U_j = -expm1(log U_j),
so both tails are inverted without rounding U to 0 or 1: the normal marginals
in closed form (``ndtri`` of the smaller tail probability), the mixture
marginals by bisection on log F or log(1 - F).

Mode scoring. The modes are orthants, not points: the experiment scores
Clayton samples by the sign pattern of their first eight coordinates
(``sign_patterns``), against the exact pattern weights (``pattern_weights``,
by inclusion-exclusion on the copula CDF). Under the target, all 256 patterns
appear in 20,000 samples (the rarest has weight ~0.0011, i.e. ~23 expected
samples) and P(x_j > 0) = 1 - F_j(0) ~= 0.3 for j < 8; the pattern weights
differ from the independent-product weights 0.7^a 0.3^(8-a) because the
copula's positive dependence favours the all-negative and all-positive
patterns (0.327 and 0.043, against 0.058 and 6.6e-5).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtri
from scipy.special import comb as _comb
from scipy.special import ndtr as _ndtr

from gmjax.registry import check_options
from gmjax.targets.base import Modes, Target
from gmjax.targets.registry import TARGETS

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_HALF = math.log(0.5)
# Beyond this largest exponent a_j = -theta log u_j, log(1 + sum expm1(a_j)) is
# evaluated with the maximum factored out (expm1(20) * 64 ~ 3e10: no overflow).
_SWITCH = 20.0


def _normal_logpdf(z: jax.Array) -> jax.Array:
    """``log phi(z) = -z^2 / 2 - log(2 pi) / 2``."""
    return -0.5 * jnp.square(z) - _HALF_LOG_2PI


def log_clayton_sum(log_u: jax.Array, theta: float) -> jax.Array:  # [..., d] -> [...]
    """``log(sum_j u_j^{-theta} - d + 1) = log(1 + sum_j expm1(-theta log u_j))``.

    Stable for ``log u`` from 0 down to ~-1e37: ``log1p`` of the sum of
    ``expm1`` while ``M = max_j (-theta log u_j) <= 20``, else
    ``M + log(sum_j exp(a_j - M) - (d - 1) exp(-M))``, where the sum is >= 1
    (its largest term is 1), so nothing cancels. Both branches see clamped
    inputs, so the unused one is finite and gradients carry no NaN.
    """
    d = log_u.shape[-1]
    a = -theta * log_u  # [..., d], >= 0
    m = jnp.max(a, axis=-1)  # [...]
    small = jnp.log1p(jnp.sum(jnp.expm1(jnp.minimum(a, _SWITCH)), axis=-1))  # [...]
    m_big = jnp.maximum(m, _SWITCH)  # [...]
    big = m_big + jnp.log(jnp.sum(jnp.exp(a - m_big[..., None]), axis=-1)
                          - (d - 1) * jnp.exp(-m_big))  # [...]
    return jnp.where(m <= _SWITCH, small, big)


def log_clayton_copula_density(log_u: jax.Array, theta: float) -> jax.Array:
    """``log c(u)`` of the d-dimensional Clayton copula, from ``log u`` ([..., d] -> [...]).

    ``log c(u) = sum_{k<d} log(1 + k theta) - (1 + theta) sum_j log u_j
    - (d + 1/theta) log(sum_j u_j^{-theta} - d + 1)``.
    """
    d = log_u.shape[-1]
    log_const = float(np.sum(np.log1p(theta * np.arange(d))))
    return (log_const - (1.0 + theta) * jnp.sum(log_u, axis=-1)
            - (d + 1.0 / theta) * log_clayton_sum(log_u, theta))


class ClaytonTarget(Target):
    """Clayton copula with bimodal-mixture and normal marginals (Qiu and Wang, 2024).

    Args:
        dim: p, the dimension (the paper uses 8, 16, 32, 64).
        theta: Clayton parameter (> 0); Kendall's tau is theta / (theta + 2).
        num_bimodal: how many leading coordinates have the mixture marginal;
            ``min(8, dim)`` by default, so ``2^num_bimodal`` modes.
        mixture_weights, mixture_locs, mixture_scale: the bimodal marginal
            ``sum_k w_k N(m_k, s^2)``, by default ``0.7 N(-1, 0.2^2) + 0.3 N(1, 0.2^2)``.
        normal_scale: sd of the remaining ``dim - num_bimodal`` normal marginals (0.5).
        bisection_steps: iterations of the bisection that inverts the mixture CDF
            (40 halve the bracket, of width 18 by default, to ~2e-11).
        dtype: floating dtype of samples and stored constants.
    """

    log_normalizer: Optional[float] = 0.0

    def __init__(
        self,
        dim: int = 8,
        theta: float = 2.0,
        *,
        num_bimodal: Optional[int] = None,
        mixture_weights: Sequence[float] = (0.7, 0.3),
        mixture_locs: Sequence[float] = (-1.0, 1.0),
        mixture_scale: float = 0.2,
        normal_scale: float = 0.5,
        bisection_steps: int = 40,
        dtype: Any = jnp.float32,
    ):
        super().__init__(dim)
        if theta <= 0:
            raise ValueError(f"theta must be positive, got {theta}")
        if num_bimodal is None:
            num_bimodal = min(8, self.dim)
        if not 0 <= num_bimodal <= self.dim:
            raise ValueError(f"num_bimodal must be in [0, dim={self.dim}], got {num_bimodal}")
        w = np.asarray(mixture_weights, np.float64)
        w = w / w.sum()
        locs = np.asarray(mixture_locs, np.float64)
        if w.shape != locs.shape or w.ndim != 1:
            raise ValueError("mixture_weights and mixture_locs must be 1-D of one length")
        self.name = "clayton"
        self.theta = float(theta)
        self.num_bimodal = int(num_bimodal)
        self.mixture_scale = float(mixture_scale)
        self.normal_scale = float(normal_scale)
        self.bisection_steps = int(bisection_steps)
        self._dtype = jnp.dtype(dtype)
        # Python floats (pytree metadata, never traced), for the exact pattern weights.
        self._mix_w = tuple(float(v) for v in w)
        self._mix_locs = tuple(float(v) for v in locs)
        self.mixture_log_weights = jnp.asarray(np.log(w), self._dtype)  # [C]
        self.mixture_locs = jnp.asarray(locs, self._dtype)  # [C]
        # The bisection bracket of the mixture quantile: 40 sd beyond the
        # outer components covers log F down to ~-800.
        self._bracket = (float(locs.min() - 40.0 * mixture_scale),
                         float(locs.max() + 40.0 * mixture_scale))

    @property
    def dtype(self) -> jnp.dtype:
        """The floating dtype of samples."""
        return self._dtype

    @property
    def num_modes(self) -> int:
        return 2 ** self.num_bimodal

    # ------------------------------------------------------------------ marginals

    def _mixture_z(self, x: jax.Array) -> jax.Array:  # [...] -> [..., C]
        return (x[..., None] - self.mixture_locs) / self.mixture_scale

    def marginal_log_cdf(self, x: jax.Array) -> jax.Array:  # [..., p] -> [..., p]
        """``log F_j(x_j)`` for every coordinate."""
        x = jnp.asarray(x)
        m = self.num_bimodal
        xb, xn = x[..., :m], x[..., m:]
        lb = jax.nn.logsumexp(self.mixture_log_weights + log_ndtr(self._mixture_z(xb)), axis=-1)
        ln = log_ndtr(xn / self.normal_scale)
        return jnp.concatenate([lb, ln], axis=-1)

    def marginal_log_survival(self, x: jax.Array) -> jax.Array:  # [..., p] -> [..., p]
        """``log(1 - F_j(x_j))`` for every coordinate, accurate in the upper tail."""
        x = jnp.asarray(x)
        m = self.num_bimodal
        xb, xn = x[..., :m], x[..., m:]
        lb = jax.nn.logsumexp(self.mixture_log_weights + log_ndtr(-self._mixture_z(xb)), axis=-1)
        ln = log_ndtr(-xn / self.normal_scale)
        return jnp.concatenate([lb, ln], axis=-1)

    def marginal_log_prob(self, x: jax.Array) -> jax.Array:  # [..., p] -> [..., p]
        """``log f_j(x_j)`` for every coordinate."""
        x = jnp.asarray(x)
        m = self.num_bimodal
        xb, xn = x[..., :m], x[..., m:]
        lb = (jax.nn.logsumexp(self.mixture_log_weights + _normal_logpdf(self._mixture_z(xb)),
                               axis=-1) - math.log(self.mixture_scale))
        ln = _normal_logpdf(xn / self.normal_scale) - math.log(self.normal_scale)
        return jnp.concatenate([lb, ln], axis=-1)

    # ------------------------------------------------------------------ density

    def log_prob(self, x: jax.Array) -> jax.Array:  # [..., p] -> [...]
        """``log p(x) = log c(F_1(x_1), ..., F_p(x_p)) + sum_j log f_j(x_j)``."""
        return (log_clayton_copula_density(self.marginal_log_cdf(x), self.theta)
                + jnp.sum(self.marginal_log_prob(x), axis=-1))

    # ------------------------------------------------------------------ sampler

    def _log_gamma(self, key: jax.Array, n: int) -> jax.Array:  # -> [n]
        """``log V``, V ~ Gamma(1/theta, 1).

        When ``k = 2/theta`` is a small integer (theta = 2 gives k = 1), V is
        exactly ``chi^2_k / 2 = sum_{i<k} Z_i^2 / 2``, which is much cheaper to
        compile than ``jax.random.loggamma``'s rejection loop; otherwise
        ``loggamma``. Clamped at log(tiny) (V < 1e-38 has probability ~1e-19).
        """
        dt = self._dtype
        k = 2.0 / self.theta
        if abs(k - round(k)) < 1e-12 and 1 <= round(k) <= 8:
            k = int(round(k))
            z = jax.random.normal(key, (n * k,), dt).reshape(n, k)  # [n, k]
            log_v = jnp.log(jnp.sum(jnp.square(z), axis=-1)) - math.log(2.0)  # [n]
        else:
            log_v = jax.random.loggamma(key, 1.0 / self.theta, (n,), dt)  # [n]
        return jnp.maximum(log_v, math.log(jnp.finfo(dt).tiny))

    def _log_uniforms(self, key: jax.Array, n: int, num: int):
        """Marshall-Olkin: ``(log U, log(1 - U))``, each ``[n, num]``, U with the Clayton copula.

        ``log U_j = -softplus(log E_j - log V) / theta``, V ~ Gamma(1/theta, 1)
        (drawn as log V), E_j ~ Exp(1) (clamped at eps/2 > 0 so that U < 1).
        """
        key_v, key_e = jax.random.split(key)
        dt = self._dtype
        log_v = self._log_gamma(key_v, n)  # [n]
        e = jax.random.exponential(key_e, (n * num,), dt).reshape(n, num)  # [n, num]
        e = jnp.maximum(e, jnp.finfo(dt).eps / 2)
        log_u = -jax.nn.softplus(jnp.log(e) - log_v[:, None]) / self.theta  # [n, num]
        log_1mu = jnp.log(-jnp.expm1(log_u))  # [n, num]
        return log_u, log_1mu

    def _mixture_quantile(self, log_u: jax.Array, log_1mu: jax.Array) -> jax.Array:
        """``F^{-1}(U)`` of the bimodal marginal by bisection ([...] -> [...]).

        Solves ``log F(x) = log U`` when U < 1/2 and ``log(1 - F(x)) = log(1 - U)``
        otherwise, so both tails keep full relative precision.
        """
        lower = log_u < _LOG_HALF
        sign = jnp.where(lower, 1.0, -1.0).astype(log_u.dtype)  # +1: lower tail, -1: upper
        target = jnp.where(lower, log_u, log_1mu)
        lw = self.mixture_log_weights

        def excess(x):  # increasing in x; zero at the quantile
            # sign = +1: log F(x) - log U; sign = -1: log(1 - U) - log(1 - F(x)).
            tail = jax.nn.logsumexp(lw + log_ndtr(sign[..., None] * self._mixture_z(x)), axis=-1)
            return sign * (tail - target)

        def step(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = excess(mid) > 0
            return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

        lo = jnp.full(log_u.shape, self._bracket[0], log_u.dtype)
        hi = jnp.full(log_u.shape, self._bracket[1], log_u.dtype)
        lo, hi = jax.lax.fori_loop(0, self.bisection_steps, step, (lo, hi))
        return 0.5 * (lo + hi)

    def _normal_quantile(self, log_u: jax.Array, log_1mu: jax.Array) -> jax.Array:
        """``sigma Phi^{-1}(U)`` from the smaller of U and 1 - U ([...] -> [...])."""
        lower = log_u < _LOG_HALF
        tiny = jnp.finfo(log_u.dtype).tiny
        q = jnp.maximum(jnp.exp(jnp.where(lower, log_u, log_1mu)), tiny)
        z = ndtri(q)
        return self.normal_scale * jnp.where(lower, z, -z)

    def _sample_n(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, p]
        """Exact samples (what ``sample(seed=, sample_shape=)`` calls), compiled once per n."""
        return _jit_draw(self, key, n)

    def _draw(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, p]
        """Exact samples: Marshall-Olkin uniforms pushed through the marginal quantiles."""
        m = self.num_bimodal
        log_u, log_1mu = self._log_uniforms(key, n, self.dim)  # [n, p] each
        xb = self._mixture_quantile(log_u[:, :m], log_1mu[:, :m])  # [n, m]
        xn = self._normal_quantile(log_u[:, m:], log_1mu[:, m:])  # [n, p - m]
        return jnp.concatenate([xb, xn], axis=-1)

    # ------------------------------------------------------------------ modes

    def sign_patterns(self, x: jax.Array) -> jax.Array:  # [..., p] -> [...] int32
        """Pattern index ``sum_{j < 8} [x_j > 0] 2^j`` of each sample.

        It equals the index of the nearest centre of ``modes()`` (ties at
        x_j = 0 go to the negative side in both).
        """
        x = jnp.asarray(x)
        bits = (x[..., : self.num_bimodal] > 0).astype(jnp.int32)  # [..., m]
        return jnp.sum(bits << jnp.arange(self.num_bimodal, dtype=jnp.int32), axis=-1)

    def negative_counts(self, x: jax.Array) -> jax.Array:  # [..., p] -> [...] int32
        """How many of the first 8 coordinates are not positive: the number of zero bits
        of ``sign_patterns`` (8 is the all-negative pattern, a third of the mass)."""
        x = jnp.asarray(x)
        return self.num_bimodal - jnp.sum(x[..., : self.num_bimodal] > 0, axis=-1,
                                          dtype=jnp.int32)

    def weight_indicators(self, x: jax.Array) -> jax.Array:  # [n, p] -> [n, m]
        """x_j > 0 for the bimodal coordinates: their means are P(x_j > 0) ~= 0.3."""
        return (x[:, : self.num_bimodal] > 0).astype(jnp.float32)

    def true_weights(self) -> np.ndarray:
        """P(x_j > 0) = 1 - F_j(0) for each bimodal coordinate (~0.3)."""
        return np.full(self.num_bimodal, 1.0 - self._mixture_cdf_at_zero())

    def negative_count_shares(self, x: jax.Array) -> np.ndarray:  # [n, p] -> [m + 1]
        """The shares of ``x`` with k = 0 ... m of the bimodal coordinates negative
        (U-shaped under p: a third of the mass at k = m; nearly binomial for a
        sampler without the copula's dependence)."""
        counts = np.asarray(self.negative_counts(x))
        return np.bincount(counts, minlength=self.num_bimodal + 1) / len(counts)

    def quality_metrics(self, samples: np.ndarray, max_draws: int = 20_000
                        ) -> Dict[str, float]:
        """The sign patterns of the bimodal coordinates in the first ``max_draws`` samples.

        ``sign_patterns_present`` (of 2^m), ``positive_frac_max_error`` =
        max_j |P(x_j > 0) - true_weights()_j|, ``positive_frac_<j>`` and
        ``pattern_weight_tv`` against the exact pattern weights.
        """
        x = np.asarray(samples[:max_draws])
        m = self.num_bimodal
        patterns = np.asarray(self.sign_patterns(jnp.asarray(x)))
        positive = np.mean(x[:, :m] > 0, axis=0)
        q = np.bincount(patterns, minlength=2 ** m) / len(patterns)
        w = np.asarray(self.pattern_weights())
        return {"sign_patterns_present": int(np.unique(patterns).size),
                "num_sign_patterns": 2 ** m,
                "positive_frac_max_error": float(np.max(np.abs(positive - self.true_weights()))),
                **{f"positive_frac_{j}": float(positive[j]) for j in range(m)},
                "pattern_weight_tv": float(0.5 * np.sum(np.abs(q - w)))}

    def _mixture_cdf_at_zero(self) -> float:
        """``u0 = F(0)`` of the bimodal marginal, float64 (0.7 for the default)."""
        return float(np.sum(np.asarray(self._mix_w) * _ndtr(
            -np.asarray(self._mix_locs) / self.mixture_scale)))

    def pattern_weights(self) -> jax.Array:  # [2^m]
        """Exact ``P(sign pattern = k)``, by inclusion-exclusion on the copula CDF.

        Only the first m coordinates matter, and X_j <= 0 iff U_j <= u0 = F(0).
        The Clayton CDF ``C(u) = (sum_j u_j^{-theta} - d + 1)^{-1/theta}`` at a
        set of size s of u0's (the rest 1) is ``C_s = (s u0^{-theta} - s + 1)^{-1/theta}``,
        so a pattern with a negatives and b = m - a positives has probability

            w(a) = sum_{t=0}^{b} (-1)^t binom(b, t) C_{a+t}

        (exchangeability: it depends only on a). Computed in float64 numpy.
        """
        m = self.num_bimodal
        u0 = self._mixture_cdf_at_zero()
        s = np.arange(m + 1)
        c = (s * u0 ** -self.theta - s + 1.0) ** (-1.0 / self.theta)  # [m + 1], c[0] = 1
        w_by_neg = np.array([sum((-1) ** t * _comb(m - a, t, exact=True) * c[a + t]
                                 for t in range(m - a + 1)) for a in range(m + 1)])
        positives = np.array([bin(k).count("1") for k in range(2 ** m)])
        w = np.clip(w_by_neg[m - positives], 0.0, None)
        return jnp.asarray(w / w.sum(), self._dtype)

    def estimate_pattern_weights(self, key: jax.Array, n: int = 10**6,
                                 batch_size: int = 250_000) -> jax.Array:  # -> [2^m]
        """Monte Carlo pattern weights from >= ``n`` exact draws, a check of ``pattern_weights``.

        Draws only the first m Marshall-Olkin uniforms (the copula's margins
        are Clayton with the same theta) and reads the sign of X_j off
        ``U_j > F_j(0)``, without inverting the marginals. The draws come in
        ``ceil(n / batch_size)`` equal batches (one compilation).
        """
        m = self.num_bimodal
        log_u0 = math.log(self._mixture_cdf_at_zero())  # X_j > 0 iff log U_j > log F(0)
        shifts = jnp.arange(m, dtype=jnp.int32)
        num_batches = -(-n // batch_size)
        size = -(-n // num_batches)

        @jax.jit
        def counts(k: jax.Array) -> jax.Array:  # -> [2^m]
            log_u, _ = self._log_uniforms(k, size, m)  # [size, m]
            idx = jnp.sum((log_u > log_u0).astype(jnp.int32) << shifts, axis=-1)  # [size]
            return jnp.zeros((2 ** m,), jnp.int32).at[idx].add(1)

        total = jnp.zeros((2 ** m,), jnp.int32)
        for k in jax.random.split(key, num_batches):
            total = total + counts(k)
        return total.astype(self._dtype) / (num_batches * size)

    def tempered_positive_fraction(self, betas: Sequence[float], num_draws: int, seed: int = 0,
                                   batch_size: int = 250_000, widen: float = 2.0
                                   ) -> Dict[str, np.ndarray]:
        """P_beta(x_j > 0), j < m, of the tempered target p_beta ∝ p^beta, by importance sampling.

        The proposal is the defensive mixture g = (p + b) / 2 of the target
        itself (exact draws; p is normalized) and a broad product density b:
        each bimodal coordinate from an equal mixture of N(m_k, (widen s)^2)
        at the mixture's locations m_k (s: ``mixture_scale``), each normal one
        from N(0, (widen sigma)^2). The exact half covers p_1, the broad half
        the flatter p_beta of small beta, where the sign patterns' weights
        even out. With w_i ∝ p(X_i)^beta / g(X_i), self-normalized,

            P_beta(x_j > 0) ≈ sum_i w_i [X_ij > 0],   U_beta ≈ mean_i p(X_i)^beta / g(X_i).

        ``num_draws`` draws (at least) come in equal batches of at most
        ``batch_size`` (one compilation); a seed gives the same draws at every beta.

        Returns:
          ``beta``; ``mean``, ``min``, ``max``: over the m coordinates of the
          estimated P_beta(x_j > 0); ``ess``: 1 / sum_i w_i^2; ``log_u``: log U_beta
          = log ∫ p^beta (0 at beta = 1), each ``[len(betas)]``; and ``counts``
          ``[len(betas), m + 1]``: P_beta(k of the m coordinates are negative).
        """
        m, dt = self.num_bimodal, self._dtype
        locs = self.mixture_locs  # [C]
        num_locs = locs.shape[0]
        scale_b, scale_n = widen * self.mixture_scale, widen * self.normal_scale
        num_batches = -(-num_draws // batch_size)
        size = -(-num_draws // num_batches)
        half = size // 2

        def broad_log_prob(x):  # [n, p] -> [n]
            z = (x[:, :m, None] - locs) / scale_b  # [n, m, C]
            lb = (jax.nn.logsumexp(_normal_logpdf(z), axis=-1) - math.log(num_locs)
                  - math.log(scale_b))
            ln = _normal_logpdf(x[:, m:] / scale_n) - math.log(scale_n)
            return jnp.sum(lb, axis=-1) + jnp.sum(ln, axis=-1)

        @jax.jit
        def draws(key):
            k_loc, k_noise, k_exact = jax.random.split(key, 3)
            centre = locs[jax.random.randint(k_loc, (half, m), 0, num_locs)]  # [half, m]
            centre = jnp.concatenate([centre, jnp.zeros((half, self.dim - m), dt)], axis=-1)
            scale = jnp.where(jnp.arange(self.dim) < m, scale_b, scale_n).astype(dt)
            broad = centre + scale * jax.random.normal(k_noise, (half, self.dim), dt)
            x = jnp.concatenate([broad, self._draw(k_exact, size - half)])  # [size, p]
            log_f = self.log_prob(x)
            log_g = jnp.logaddexp(log_f, broad_log_prob(x)) - math.log(2.0)
            return log_f, log_g, x[:, :m] > 0

        parts = [jax.device_get(draws(k))
                 for k in jax.random.split(jax.random.PRNGKey(seed), num_batches)]
        log_f, log_g = (np.concatenate([np.float64(p[j]) for p in parts]) for j in (0, 1))
        positive = np.concatenate([p[2] for p in parts])  # bool [n, m]
        negatives = m - positive.sum(axis=1)
        betas = np.asarray(betas, np.float64)
        est, ess, log_u, counts = [], [], [], []
        for beta in betas:  # one [n] weight vector at a time
            log_w = beta * log_f - log_g
            top = log_w.max()
            w = np.exp(log_w - top)
            log_u.append(np.log(w.mean()) + top)
            w /= w.sum()
            est.append(w @ positive)
            ess.append(1.0 / np.sum(w ** 2))
            counts.append(np.bincount(negatives, weights=w, minlength=m + 1))
        est = np.asarray(est)  # [len(betas), m]
        return {"beta": betas, "mean": est.mean(1), "min": est.min(1), "max": est.max(1),
                "ess": np.asarray(ess), "log_u": np.asarray(log_u),
                "counts": np.asarray(counts)}

    def modes(self) -> Modes:
        """The 256 sign-pattern orthants, represented by points at ``+-1`` (others 0).

        ``centres[k, j] = +1`` if bit j of k is set else -1 (j < 8), 0 beyond, so
        the nearest centre of a sample is its sign pattern. ``weights`` are the
        exact ``pattern_weights()``. ``sd`` is the root-mean-square distance of
        a sample from its pattern centre under the product of the marginal
        components, ``sqrt(8 * 0.2^2 + (p - 8) * 0.5^2)``: the 3-sd ball holds
        essentially every exact sample, so ``high_quality_frac`` is only a
        sanity check and the score is the sign-pattern coverage and weights.
        """
        m = self.num_bimodal
        k = np.arange(2 ** m)
        bits = (k[:, None] >> np.arange(m)[None, :]) & 1  # [2^m, m]
        centres = np.zeros((2 ** m, self.dim))
        centres[:, :m] = 2.0 * bits - 1.0
        sd = math.sqrt(m * self.mixture_scale ** 2
                       + (self.dim - m) * self.normal_scale ** 2)
        return Modes(centres=jnp.asarray(centres, self._dtype),
                     sd=jnp.asarray(sd, self._dtype), weights=self.pattern_weights())


@functools.partial(jax.jit, static_argnums=2)
def _jit_draw(target: Target, key: jax.Array, n: int) -> jax.Array:
    """``target._draw(key, n)`` under jit: the target is a pytree (distrax ``Jittable``),
    so eager ``target.sample(...)`` calls compile once per (target layout, n)."""
    return target._draw(key, n)


@TARGETS.register("clayton")
def clayton(dim: int = 8, theta: float = 2.0, **options: Any) -> ClaytonTarget:
    """The Clayton-copula target (Qiu and Wang, 2024, Section 5.1); p = 8, 16, 32, 64.

    ``options``: the keyword arguments of ``ClaytonTarget``.
    """
    check_options(ClaytonTarget, dict(options, dim=dim, theta=theta), "target 'clayton'")
    return ClaytonTarget(dim=dim, theta=theta, **options)


__all__: Sequence[str] = ("ClaytonTarget", "clayton", "log_clayton_copula_density",
                          "log_clayton_sum")
