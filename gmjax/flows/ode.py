"""ODE solves with the instantaneous change of variables, shared by every continuous-time model.

A velocity field v(y, t) moves points along ``dy/dt = v(y, t)``. Along one
trajectory the log-density changes by the divergence of the field (Chen,
Rubanova, Bettencourt and Duvenaud, 2018, "Neural ordinary differential
equations", Theorem 1),

    d log p(y(t)) / dt = -tr(dv/dy (y(t), t)),

so the flow map y(t0) -> y(t1) has

    log|det dy(t1)/dy(t0)| = int_{t0}^{t1} tr(dv/dy (y(t), t)) dt.

``integrate`` solves the state ``y`` and this integral together with diffrax
(Kidger, 2021, "On neural differential equations") and is the one ODE solve of
the library: continuous normalizing flows (``log p(x) = log p(z) - log|det|``
with a learned field) and the diffusion family's probability-flow ODE (sampling
and exact likelihood with the field of a learned score) both call it.

Choices, each by name (a bad name fails with the valid ones listed):

* ``solver``: ``"dopri5"`` and ``"tsit5"`` (adaptive, with ``rtol``/``atol``),
  ``"rk4"``, ``"heun"``, ``"midpoint"``, ``"euler"`` (fixed step, ``num_steps``
  steps); see ``ODE_SOLVERS``.
* ``trace``: ``"exact"`` (d Jacobian-vector products per evaluation, for small
  d) or ``"hutchinson"``: ``tr(J) = E[eps^T J eps]`` for probes with
  ``E[eps eps^T] = I`` (Hutchinson, 1990; FFJORD, Grathwohl et al., 2019),
  one Jacobian-vector product per evaluation, unbiased; the probe is drawn once
  per solve and held fixed along it, as in FFJORD.
* ``probe``: ``"rademacher"`` (entries +-1, lower variance) or ``"gaussian"``.
* ``adjoint``: ``"direct"`` backpropagates through the solver's operations
  (``diffrax.RecursiveCheckpointAdjoint``: exact gradients of the discretized
  solve) and ``"backsolve"`` solves the adjoint ODE backwards in time
  (``diffrax.BacksolveAdjoint``, Chen et al. 2018: O(1) memory, gradients exact
  only up to the solver's tolerance).

Inside ``jax.shard_map`` (data-parallel training, ``gmjax.training``) a solve
runs only with the map's varying-axis checks off (``make_train_step(...,
check_vma=False)``): diffrax creates its loop carries and save buffers
device-invariant, so a device-varying state fails those checks
(patrick-kidger/diffrax#735), and ``integrate`` refuses such a state with that
advice. There the ``"direct"`` adjoint is ``diffrax.DirectAdjoint``: the
backward pass of ``RecursiveCheckpointAdjoint``'s checkpointed loop fails
equinox's closure-conversion check (the array types it compares carry the
map's manual mesh on one side only). Both backpropagate through the same discretized solve,
so the gradients agree to float rounding (``tests/test_cnf_multidevice.py``).
The ``"backsolve"`` adjoint does not trace inside ``shard_map`` and is refused
there.

Running costs (``integrate(..., regularize=True)``), integrated alongside the
state over |dt| (so they are positive whichever way the solve runs): the RNODE
regularizers of Finlay, Jacobsen, Nurbekyan and Oberman (2020, "How to train
your neural ODE"), the kinetic energy ``int ||v||^2 dt`` and the Jacobian
Frobenius norm ``int ||dv/dy||_F^2 dt``. The Frobenius term follows the trace
estimator: the exact trace's full Jacobian gives it exactly, Hutchinson's
Jacobian-vector product gives ``||J eps||^2``, an unbiased estimate
(``E[eps^T J^T J eps] = tr(J^T J)``) at no extra cost. A model may also bring
its own divergence (``divergence=``, e.g. OT-Flow's exact Hessian trace) and
its own running costs (``running_cost=``, e.g. OT-Flow's transport cost and
HJB penalty).

The velocity is called on batches, ``velocity(y [n, *event], t, args) ->
[n, *event]``, and every row must depend on its own row only (as any per-sample
network does). Parameters that gradients should reach go through ``args``:
the backsolve adjoint differentiates with respect to ``args`` and ``y0``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, NamedTuple, Optional

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.registry import Registry

PyTree = Any
Velocity = Callable[[jax.Array, jax.Array, PyTree], jax.Array]  # (y [n, ...], t, args) -> [n, ...]

TRACE_ESTIMATORS = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")
ADJOINTS = ("direct", "backsolve")
# The exact trace builds an [n, d, d] Jacobian per velocity evaluation; above this many
# entries (float32: 1 GiB) it is refused in favour of Hutchinson's estimator.
MAX_EXACT_TRACE_ENTRIES = 2 ** 28


_rk4_tableau = diffrax.ButcherTableau(
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    # The classical method has no embedded pair; it is used with fixed steps only, so the
    # error estimate (against the midpoint rule) is never read.
    b_error=np.array([1 / 6, 1 / 3 - 1.0, 1 / 3, 1 / 6]),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge-Kutta method (Kutta, 1901), 4 stages, fixed step."""

    tableau: ClassVar[diffrax.ButcherTableau] = _rk4_tableau
    interpolation_cls: ClassVar[Callable[..., Any]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k)

    def order(self, terms):
        del terms
        return 4


@dataclasses.dataclass(frozen=True)
class SolverSpec:
    """A registered solver: its diffrax class, whether it adapts its step, and the
    velocity evaluations one step costs (first-same-as-last stages counted once)."""

    make: Callable[[], diffrax.AbstractSolver]
    adaptive: bool
    evals_per_step: int


ODE_SOLVERS: Registry[SolverSpec] = Registry("ODE solver")
ODE_SOLVERS.register("dopri5")(SolverSpec(diffrax.Dopri5, True, 6))
ODE_SOLVERS.register("tsit5")(SolverSpec(diffrax.Tsit5, True, 6))
ODE_SOLVERS.register("rk4")(SolverSpec(RK4, False, 4))
ODE_SOLVERS.register("heun")(SolverSpec(diffrax.Heun, False, 2))
ODE_SOLVERS.register("midpoint")(SolverSpec(diffrax.Midpoint, False, 2))
ODE_SOLVERS.register("euler")(SolverSpec(diffrax.Euler, False, 1))


@dataclasses.dataclass(frozen=True)
class ODEOptions:
    """How to solve: every field is checked by ``check`` (called by ``integrate``).

    Attributes:
      solver: a name in ``ODE_SOLVERS``.
      rtol, atol: tolerances of the adaptive solvers.
      num_steps: steps of the fixed-step solvers (>= 1).
      trace: ``"exact"`` or ``"hutchinson"``.
      probe: ``"rademacher"`` or ``"gaussian"`` (Hutchinson only).
      adjoint: ``"direct"`` or ``"backsolve"``.
      max_steps: the most steps an adaptive solve may take before it fails.
    """

    solver: str = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-5
    num_steps: int = 100
    trace: str = "exact"
    probe: str = "rademacher"
    adjoint: str = "direct"
    max_steps: int = 4096

    def check(self) -> "ODEOptions":
        """Returns self, or raises ``ValueError`` naming the bad field and its valid values."""
        spec = ODE_SOLVERS.get(self.solver)
        if not spec.adaptive and (not isinstance(self.num_steps, (int, np.integer))
                                  or self.num_steps < 1):
            raise ValueError(f"num_steps must be an integer >= 1 for the fixed-step solver "
                             f"{self.solver!r}, got {self.num_steps!r}")
        if spec.adaptive and not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"rtol and atol must be > 0, got rtol={self.rtol}, atol={self.atol}")
        for field, valid in (("trace", TRACE_ESTIMATORS), ("probe", PROBES),
                             ("adjoint", ADJOINTS)):
            value = getattr(self, field)
            if value not in valid:
                raise ValueError(f"unknown {field} {value!r}; valid choices: {', '.join(valid)}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        return self


class ODEResult(NamedTuple):
    """The end of a solve.

    Attributes:
      y: ``[n, *event]`` the state at t1.
      log_det: ``[n]`` ``int_{t0}^{t1} tr(dv/dy) dt = log|det dy(t1)/dy(t0)|`` (zeros when
        the solve was asked not to track it).
      nfe: velocity evaluations of the solve (scalar int; steps times stages per step,
        rejected adaptive steps included).
      num_steps: solver steps taken (accepted and rejected).
      kinetic: ``[n]`` ``int ||v||^2 |dt|`` (``regularize=True``; else None).
      frobenius: ``[n]`` ``int ||dv/dy||_F^2 |dt|``, exact or Hutchinson like the trace
        (``regularize=True``; else None).
      costs: ``[n, k]`` the integrated ``running_cost`` over |dt| (else None).
    """

    y: jax.Array
    log_det: jax.Array
    nfe: jax.Array
    num_steps: jax.Array
    kinetic: Optional[jax.Array] = None
    frobenius: Optional[jax.Array] = None
    costs: Optional[jax.Array] = None


def _manual_axes() -> tuple:
    """The mesh axes of an enclosing ``shard_map`` (empty outside one)."""
    return tuple(getattr(jax.sharding.get_abstract_mesh(), "manual_axes", ()))


def _varying_axes(tree: PyTree) -> frozenset:
    """The manual mesh axes some array of ``tree`` varies over (``shard_map``'s
    varying-axis types; empty with the checks off or outside a ``shard_map``)."""
    axes = set()
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array):
            aval = jax.typeof(leaf)
            vma = getattr(aval, "vma", None)
            if vma is None:
                vma = getattr(getattr(aval, "manual_axis_type", None), "varying", ())
            axes.update(vma)
    return frozenset(axes)


def draw_probe(key: jax.Array, shape, probe: str, dtype=jnp.float32) -> jax.Array:
    """A probe with ``E[eps eps^T] = I``: Rademacher (+-1) or standard Gaussian entries."""
    if probe == "rademacher":
        return jax.random.rademacher(key, shape, dtype=dtype)
    if probe == "gaussian":
        return jax.random.normal(key, shape, dtype=dtype)
    raise ValueError(f"unknown probe {probe!r}; valid choices: {', '.join(PROBES)}")


def _row_field(velocity: Velocity, event_shape, t, args) -> Callable[[jax.Array], jax.Array]:
    """The velocity of one flattened row: ``[D] -> [D]``."""

    def field(y_flat: jax.Array) -> jax.Array:
        y = y_flat.reshape((1,) + tuple(event_shape))
        return velocity(y, t, args).reshape(-1)

    return field


def _exact_terms(velocity: Velocity, y: jax.Array, t: jax.Array, args: PyTree
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(v [n, *event], tr(J) [n], ||J||_F^2 [n])`` from the full per-row Jacobian J.

    Rows are independent, so column k of every row's Jacobian is one Jacobian-vector
    product of the whole batch with the k-th basis vector in every row: d products on
    the batch (per-row Jacobians under ``vmap`` turn each layer into many tiny products).
    """
    n = y.shape[0]
    dim = int(np.prod(y.shape[1:]))

    def field(flat):
        return velocity(flat.reshape(y.shape), t, args).reshape(n, dim)

    flat = y.reshape(n, dim)
    basis = jnp.broadcast_to(jnp.eye(dim, dtype=y.dtype)[:, None, :], (dim, n, dim))
    value, linear = jax.linearize(field, flat)
    columns = jax.vmap(linear)(basis)                       # [k, n, i] = J[n]_{ik}
    div = jnp.einsum("knk->n", columns)
    frob = jnp.sum(columns ** 2, axis=(0, 2))
    return value.reshape(y.shape), div, frob


def _hutchinson_terms(velocity: Velocity, y: jax.Array, t: jax.Array, probe: jax.Array,
                      args: PyTree) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(v, eps^T J eps, ||J eps||^2)``: unbiased for ``tr(J)`` and ``||J||_F^2``."""
    event_shape = y.shape[1:]
    dim = int(np.prod(event_shape))

    def one(row, eps):
        value, jvp = jax.jvp(_row_field(velocity, event_shape, t, args), (row,), (eps,))
        return value, jnp.vdot(eps, jvp), jnp.sum(jvp ** 2)

    value, div, frob = jax.vmap(one)(y.reshape(y.shape[0], dim), probe.reshape(y.shape[0], dim))
    return value.reshape(y.shape), div, frob


def exact_divergence(velocity: Velocity, y: jax.Array, t: jax.Array, args: PyTree = None
                     ) -> tuple[jax.Array, jax.Array]:
    """``(v(y, t) [n, *event], tr(dv/dy) [n])``, the trace from the full per-row Jacobian."""
    value, div, _ = _exact_terms(velocity, y, t, args)
    return value, div


def hutchinson_divergence(velocity: Velocity, y: jax.Array, t: jax.Array, probe: jax.Array,
                          args: PyTree = None) -> tuple[jax.Array, jax.Array]:
    """``(v(y, t), eps^T (dv/dy) eps)``: Hutchinson's unbiased estimate of the divergence,
    ``E_eps[eps^T J eps] = tr(J)`` when ``E[eps eps^T] = I``; one Jacobian-vector product.

    Args:
      probe: ``[n, *event]``, one probe per row.
    """
    value, div, _ = _hutchinson_terms(velocity, y, t, probe, args)
    return value, div


def integrate(velocity: Velocity, y0: jax.Array, t0: float, t1: float, *,
              args: PyTree = None, options: ODEOptions = ODEOptions(),
              key: Optional[jax.Array] = None, log_det: bool = True,
              regularize: bool = False,
              divergence: Optional[Callable[[jax.Array, jax.Array, PyTree],
                                            tuple[jax.Array, jax.Array]]] = None,
              running_cost: Optional[Callable[[jax.Array, jax.Array, PyTree], jax.Array]] = None
              ) -> ODEResult:
    """Solves ``dy/dt = v(y, t)`` from t0 to t1 (t1 < t0 integrates backwards in time),
    with ``log|det dy(t1)/dy(t0)| = int tr(dv/dy) dt`` alongside when ``log_det``.

    Args:
      velocity: ``velocity(y [n, *event], t, args) -> [n, *event]``, row-wise.
      y0: ``[n, *event]``.
      t0, t1: the time interval.
      args: the velocity's parameters (gradients reach them under either adjoint).
      options: solver, trace estimator, probes, adjoint (``ODEOptions``).
      key: draws the Hutchinson probes; required for ``trace="hutchinson"``.
      log_det: integrate the divergence too (False solves the state only).
      regularize: integrate the RNODE terms too (``ODEResult.kinetic``, ``.frobenius``),
        the Frobenius norm with the trace estimator of ``options``.
      divergence: ``(y, t, args) -> (v [n, *event], tr(dv/dy) [n])``, a model's own exact
        divergence; replaces ``options.trace`` (not with ``regularize``).
      running_cost: ``(y, t, args) -> [n, k]``, integrated over |dt| into ``ODEResult.costs``.

    Returns:
      ``ODEResult(y, log_det [n], nfe, num_steps, kinetic, frobenius, costs)``.
    """
    options.check()
    manual = _manual_axes()
    varying = _varying_axes((y0, args, key)) if manual else frozenset()
    if varying:
        raise ValueError(
            f"a diffrax solve does not pass shard_map's varying-axis checks (its loop carries "
            f"are created device-invariant; patrick-kidger/diffrax#735), and this state "
            f"varies over {sorted(varying)}: compile the step with check_vma=False "
            f"(make_train_step(..., check_vma=False)) or run on one device")
    if manual and options.adjoint == "backsolve":
        raise ValueError("adjoint='backsolve' does not run inside shard_map (diffrax's "
                         "BacksolveAdjoint fails to trace there); use adjoint='direct'")
    if divergence is not None and regularize:
        raise ValueError("regularize=True takes the Frobenius norm from the trace estimator of "
                         "options; a model with its own divergence brings its own running_cost")
    if divergence is not None and not log_det:
        divergence = None
    spec = ODE_SOLVERS.get(options.solver)
    n = y0.shape[0]
    dim = int(np.prod(y0.shape[1:]))
    probe = None
    jacobian = (log_det or regularize) and divergence is None
    if jacobian and options.trace == "exact" and n * dim * dim > MAX_EXACT_TRACE_ENTRIES:
        raise ValueError(
            f"the exact trace needs an [n, d, d] = [{n}, {dim}, {dim}] Jacobian per velocity "
            f"evaluation, more than {MAX_EXACT_TRACE_ENTRIES} entries; use "
            f"trace='hutchinson' or a smaller batch")
    if jacobian and options.trace == "hutchinson":
        if key is None:
            raise ValueError("trace='hutchinson' needs a key to draw its probes")
        probe = draw_probe(key, y0.shape, options.probe, y0.dtype)
    zeros = jnp.zeros((n,), y0.dtype)
    # Running costs are integrated over |dt|: positive whichever way the solve runs.
    direction = jnp.sign(jnp.asarray(t1, y0.dtype) - jnp.asarray(t0, y0.dtype))

    def field(t, state, args):
        y = state["y"]
        frob = None
        if divergence is not None:
            value, div = divergence(y, t, args)
        elif not jacobian:
            value, div = velocity(y, t, args), zeros
        elif probe is None:
            value, div, frob = _exact_terms(velocity, y, t, args)
        else:
            value, div, frob = _hutchinson_terms(velocity, y, t, probe, args)
        out = {"y": value, "log_det": div if log_det else zeros}
        if regularize:
            flat = value.reshape(n, -1)
            out["kinetic"] = direction * jnp.sum(flat ** 2, axis=1)
            out["frobenius"] = direction * frob
        if running_cost is not None:
            out["costs"] = direction * running_cost(y, t, args)
        return out

    state0 = {"y": y0, "log_det": zeros}
    if regularize:
        state0.update(kinetic=zeros, frobenius=zeros)
    if running_cost is not None:
        shape = jax.eval_shape(running_cost, y0, jnp.asarray(t0, y0.dtype), args).shape
        state0["costs"] = jnp.zeros(shape, y0.dtype)

    if spec.adaptive:
        controller = diffrax.PIDController(rtol=options.rtol, atol=options.atol)
        dt0 = None
        max_steps = options.max_steps
    else:
        controller = diffrax.ConstantStepSize()
        dt0 = (t1 - t0) / options.num_steps
        max_steps = options.num_steps
    if options.adjoint == "backsolve":
        adjoint = diffrax.BacksolveAdjoint(solver=spec.make(), stepsize_controller=controller)
    elif manual:  # inside shard_map, see the module doc
        adjoint = diffrax.DirectAdjoint()
    else:
        adjoint = diffrax.RecursiveCheckpointAdjoint()
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field), spec.make(), t0=t0, t1=t1, dt0=dt0,
        y0=state0, args=args, stepsize_controller=controller,
        adjoint=adjoint, max_steps=max_steps)
    end = jax.tree_util.tree_map(lambda leaf: leaf[-1], solution.ys)
    steps = solution.stats["num_steps"]
    # Adaptive solvers evaluate the field once at t0 (first-same-as-last) and twice more to
    # choose the first step.
    nfe = spec.evals_per_step * steps + (3 if spec.adaptive else 0)
    return ODEResult(y=end["y"], log_det=end["log_det"], nfe=nfe, num_steps=steps,
                     kinetic=end.get("kinetic"), frobenius=end.get("frobenius"),
                     costs=end.get("costs"))


__all__ = ["ADJOINTS", "MAX_EXACT_TRACE_ENTRIES", "ODEOptions", "ODEResult", "ODE_SOLVERS",
           "PROBES", "RK4", "SolverSpec", "TRACE_ESTIMATORS", "Velocity", "draw_probe",
           "exact_divergence", "hutchinson_divergence", "integrate"]
