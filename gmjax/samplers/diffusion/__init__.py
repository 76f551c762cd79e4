"""Diffusion and score-model samplers: DDPM, DDIM, reverse SDEs, probability flow, Langevin.

The pieces of the family and where they live (imports go one way, so the
forward processes sit below the samplers, beside the losses that use them):

* ``gmjax.objectives.diffusion_process``: noise schedules (``NOISE_SCHEDULES``:
  ``linear``, ``cosine``; ``make_schedule``), the closed forms q(x_t | x_0) and
  q(x_{t-1} | x_t, x_0), and the VP / VE SDEs (``SDES``, ``make_sde``);
* ``gmjax.objectives.diffusion``: L_simple, the variational bound, DSM, NCSN,
  score-SDE DSM and sliced score matching;
* ``gmjax.nets.TimeMLP``: a time-conditioned MLP for 2-D and tabular data;
* ``gmjax.flows.ode``: the ODE solve and trace estimators shared with the
  continuous flows;
* here: ``ancestral_sample`` and ``ddim_sample`` (``ddpm``),
  ``euler_maruyama_sample``, ``predictor_corrector_sample``,
  ``probability_flow_sample`` and ``probability_flow_log_prob`` (``sde``),
  ``annealed_langevin_sample`` (``langevin``).

A DDPM on 2-D data, end to end::

    schedule = make_schedule("linear", 1000)
    net = TimeMLP(features=(128, 128, 2), max_time=1000)
    params = net.init(key, x[:1], jnp.zeros((1,), jnp.int32))
    loss = ddpm_loss(net.apply, schedule)
    step = make_train_step(loss, optimizer, data_mesh(1))
    state = TrainState.create(params, optimizer, key)
    state = fit(state, step, batch_fn, num_steps=...).state
    eps_fn = lambda x, t: net.apply(state.params, x, t)
    samples = jax.jit(lambda k: ancestral_sample(eps_fn, schedule, k, (n, 2)))(key)
    fast = jax.jit(lambda k: ddim_sample(eps_fn, schedule, k, (n, 2), num_steps=50))(key)
    bound = ddpm_vlb_loss(net.apply, schedule, decoder="gaussian")(state.params, x, key)

A score SDE replaces the schedule by ``sde = make_sde("vp")``, the loss by
``score_sde_loss(net.apply, sde)`` (the net then sees t in [0, 1]), and
samples or evaluates with ``score_fn = lambda x, t: net.apply(params, x, t)``::

    x = predictor_corrector_sample(score_fn, sde, key, (n, 2), num_steps=500)
    log_p, result = probability_flow_log_prob(score_fn, sde, x_test)  # nats, result.nfe
"""

from gmjax.samplers.diffusion.ddpm import (ANCESTRAL_VARIANCES, ancestral_sample, ddim_sample,
                                           ddim_timesteps)
from gmjax.samplers.diffusion.langevin import (annealed_langevin_sample, geometric_sigmas,
                                               langevin_step)
from gmjax.samplers.diffusion.sde import (euler_maruyama_sample, langevin_corrector,
                                          predictor_corrector_sample, probability_flow_log_prob,
                                          probability_flow_sample, probability_flow_velocity)

__all__ = ["ANCESTRAL_VARIANCES", "ancestral_sample", "annealed_langevin_sample", "ddim_sample",
           "ddim_timesteps", "euler_maruyama_sample", "geometric_sigmas", "langevin_corrector",
           "langevin_step", "predictor_corrector_sample", "probability_flow_log_prob",
           "probability_flow_sample", "probability_flow_velocity"]
