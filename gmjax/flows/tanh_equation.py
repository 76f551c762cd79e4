"""The scalar equation v + s tanh(k v + c) = t, solved elementwise with exact gradients.

Planar and Sylvester flows (``gmjax.flows.planar``, ``gmjax.flows.sylvester``)
invert their maps through it. With s k > -1 the left side increases in v
(its derivative is 1 + s k tanh'(k v + c) > 0), and the root lies in the
bracket [t - |s|, t + |s|] because |tanh| < 1. Bisection on that bracket runs
on gradient-stopped inputs, with a fixed number of halvings (enough for the
dtype's mantissa) so it jits; one Newton step from the converged point then
carries the implicit-function gradient dv/dtheta = -(dg/dtheta) / g'(v), so
gradients through the solution are exact and cheap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def tanh_prime(a: jax.Array) -> jax.Array:
    """``d tanh(a) / da = 1 - tanh(a)^2``."""
    return 1.0 - jnp.tanh(a) ** 2


def _tanh_residual(v, t, s, k, c):
    return v + s * jnp.tanh(k * v + c) - t


@jax.jit
def _bisect_tanh_equation(t, s, k, c):
    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = _tanh_residual(mid, t, s, k, c) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    steps = jnp.finfo(t.dtype).nmant + 8
    lo, hi = jax.lax.fori_loop(0, steps, halve, (t - jnp.abs(s), t + jnp.abs(s)))
    return 0.5 * (lo + hi)


def solve_tanh_equation(t: jax.Array, s: jax.Array, k: jax.Array, c: jax.Array) -> jax.Array:
    """Elementwise root v of ``g(v) = v + s tanh(k v + c) - t``, assuming ``s k > -1``.

    ``g`` increases (g' = 1 + s k tanh' > 0) and g(t - |s|) <= 0 <= g(t + |s|),
    so bisection brackets the root; enough halvings for the dtype's mantissa
    bring the bracket to rounding level, and a final Newton step from the
    gradient-stopped result gives exact implicit gradients.
    """
    t, s, k, c = jnp.broadcast_arrays(t, s, k, c)
    v = _bisect_tanh_equation(*(jax.lax.stop_gradient(a) for a in (t, s, k, c)))
    return v - _tanh_residual(v, t, s, k, c) / (1.0 + s * k * tanh_prime(k * v + c))
