"""The builder for alternating min-max (adversarial) train steps.

A game is two pure losses, both *minimized* by their own player:

  critic_loss(critic_params, gen_params, batch, key) -> (loss, metrics)
  gen_loss(gen_params, critic_params, batch, key)    -> (loss, metrics)

(a critic that maximizes V minimizes -V). One outer step of
``make_minmax_step`` performs ``critic_steps = k`` critic updates, each on
its own real batch, then one generator update on the last of them, i.e. the
schedule of WGAN (Arjovsky et al., 2017, k = 5). Two optimizers give two
timescales (TTUR, Heusel et al., 2017): pass them with different learning
rates. The batch is stacked ``[k, batch, ...]``.

Keys: critic update i uses ``fold_in(step_key, i)``, the generator update
``fold_in(step_key, k)``, each folded with the device index as in
``make_train_step``.

A *stateful* game (``stateful=True``) also carries ``MinMaxState.game``,
state that no optimizer updates (BEGAN's balance ``k_t``, the power-iteration
vectors of a spectrally normalized critic, a noise schedule's counter). Its
losses take it as a fifth argument and the critic loss returns its next
value beside the metrics:

  critic_loss(critic_params, gen_params, batch, key, game) -> (loss, (metrics, game'))
  gen_loss(gen_params, critic_params, batch, key, game)    -> (loss, metrics)

After each critic update the state becomes that update's ``game'``, its
floating-point leaves averaged over devices (integer leaves, e.g. counters,
must not depend on the data); the generator update sees the state after
the last critic update. ``gmjax.objectives.adversarial.make_gan_game`` builds
such losses.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple, Union

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from gmjax.training.state import MinMaxState
from gmjax.training.step import (TrainStep, build_train_step, device_key, gradient_norm,
                                 gradient_update, pmean, to_varying)

PyTree = Any
Metrics = Dict[str, jax.Array]
GameLoss = Callable[[PyTree, PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]


def make_minmax_step(critic_loss: GameLoss, gen_loss: GameLoss,
                     critic_optimizer: optax.GradientTransformation,
                     gen_optimizer: optax.GradientTransformation, mesh: Mesh,
                     *, critic_steps: int = 1, steps_per_call: int = 1,
                     donate: bool = True, stateful: bool = False) -> TrainStep:
    """Builds the jitted, data-parallel ``step(state, batches, log=True) -> (state, metrics)``.

    ``batches`` is ``[critic_steps, batch, ...]`` (and ``[steps_per_call,
    critic_steps, batch, ...]`` when scanning several outer steps). Metrics
    are prefixed ``critic/`` (from the last critic update) and ``gen/``; as
    in ``make_train_step``, the gradient norms ``critic/grad_norm`` and
    ``gen/grad_norm`` are computed only when ``log`` is true (NaN otherwise).
    With ``stateful`` the losses take and the step carries ``state.game``
    (module doc).
    """
    if critic_steps < 1:
        raise ValueError(f"critic_steps must be >= 1, got {critic_steps}")

    def one_step(state: MinMaxState, batches: PyTree, norm: Union[bool, jax.Array]
                 ) -> Tuple[MinMaxState, Metrics]:
        key = device_key(state.key, state.step)

        def critic_update(carry, inputs):
            params, opt_state, game = carry
            i, batch = inputs
            # Only the last critic update's metrics are reported.
            grad_norm = norm if i == critic_steps - 1 else False
            if stateful:
                loss = lambda c, b, k: critic_loss(c, state.gen_params, b, k, game)
                params, opt_state, metrics, game = _stateful_update(
                    loss, critic_optimizer, params, opt_state, batch,
                    jax.random.fold_in(key, i), grad_norm)
            else:
                loss = lambda c, b, k: critic_loss(c, state.gen_params, b, k)
                params, opt_state, metrics = gradient_update(
                    loss, critic_optimizer, params, opt_state, batch,
                    jax.random.fold_in(key, i), grad_norm=grad_norm)
            return (params, opt_state, game), metrics

        # A Python loop (k is small and static), not lax.scan: inside a scan XLA's CPU
        # backend gives the convolutions' kernel gradients non-canonical layouts that
        # run 4-5x slower (a DCGAN step: 600 ms vs 135 ms CPU time on jax 0.10.2).
        carry = (state.critic_params, state.critic_opt_state, state.game)
        per_update = []
        for i in range(critic_steps):
            carry, update_metrics = critic_update(
                carry, (i, jax.tree.map(lambda x, i=i: x[i], batches)))
            per_update.append(update_metrics)
        critic_params, critic_opt_state, game = carry
        critic_metrics = jax.tree.map(lambda *v: jnp.stack(v), *per_update)
        last_batch = jax.tree.map(lambda x: x[-1], batches)
        if stateful:
            loss = lambda g, b, k: gen_loss(g, critic_params, b, k, game)
        else:
            loss = lambda g, b, k: gen_loss(g, critic_params, b, k)
        gen_params, gen_opt_state, gen_metrics = gradient_update(
            loss, gen_optimizer, state.gen_params, state.gen_opt_state, last_batch,
            jax.random.fold_in(key, critic_steps), grad_norm=norm)
        metrics = {f"critic/{k}": v[-1] for k, v in critic_metrics.items()}
        metrics.update({f"gen/{k}": v for k, v in gen_metrics.items()})
        metrics["loss"] = gen_metrics["loss"]
        new_state = state.replace(step=state.step + 1, gen_params=gen_params,
                                  gen_opt_state=gen_opt_state, critic_params=critic_params,
                                  critic_opt_state=critic_opt_state, game=game)
        return new_state, metrics

    # The critic axis comes before the batch axis (after the scan axis, when scanning).
    return build_train_step(one_step, mesh, steps_per_call=steps_per_call, donate=donate,
                            leading_axes=1)


def _stateful_update(loss_fn: Callable, optimizer: optax.GradientTransformation,
                     params: PyTree, opt_state: PyTree, batch: PyTree, key: jax.Array,
                     grad_norm: Union[bool, jax.Array]
                     ) -> Tuple[PyTree, PyTree, Metrics, PyTree]:
    """``gradient_update`` for a loss whose aux is ``(metrics, game')``; also returns ``game'``.

    ``game'``'s floating-point leaves are averaged over devices so the
    replicated state stays replicated; other leaves are kept as computed.
    """
    local_params = to_varying(params)
    (loss, (metrics, game)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        local_params, batch, key)
    grads = pmean(grads)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = pmean(dict(metrics, loss=loss))
    metrics["grad_norm"] = gradient_norm(grads, grad_norm)
    game = jax.tree.map(
        lambda x: pmean(x) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, game)
    return params, opt_state, metrics, game
