"""Data-parallel training of the models that solve an ODE in every step (FFJORD, OT-Flow).

A diffrax solve inside ``shard_map`` runs with the map's varying-axis checks
off (``make_train_step(..., check_vma=False)``, which ``experiments/cnf.py``
passes for them; ``gmjax.flows.ode`` says why). There each device still
differentiates its own shard's loss and the step averages the gradients, so a
fixed-step solve trained on 1 and on 4 forced CPU devices from the same
parameters on the same batches agrees to float rounding (measured: 1.9e-7
relative for FFJORD, 1.0e-7 for OT-Flow after 4 Adam updates). An adaptive
training solve does not: its step sizes are chosen from the error over the
solved batch, which is each device's shard, so the runs agree to the solver's
tolerance (5e-4 relative after 4 updates at rtol = atol = 1e-3). Flow
matching draws its times and base points from the per-device keys, so its 1-
and 4-device runs differ by design; it needs no solve and runs with the checks on.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def _check(repo_root, models):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, os.path.join(repo_root, "tests",
                                                       "cnf_multidevice_check.py"), models],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agree(run, param, loss):
    assert run["moved"] > 1e-3, run  # training changed the parameters...
    assert run["param"] < param, run  # ...the same way on 1 and 4 devices
    np.testing.assert_allclose(run["loss_four_devices"], run["loss_one_device"], rtol=loss)
    # The averaged gradient, not the sum over devices.
    np.testing.assert_allclose(run["grad_norm_four_devices"], run["grad_norm_one_device"],
                               rtol=max(loss, 1e-4))


def test_ffjord_trains_the_same_on_one_and_four_devices(repo_root):
    result = _check(repo_root, "ffjord")
    _agree(result["ffjord"], param=1e-5, loss=1e-5)
    # With the checks on, the solve refuses the device-varying state and says what to do.
    assert "check_vma=False" in result["refusal"] and "diffrax#735" in result["refusal"]


@pytest.mark.slow
def test_otflow_and_an_adaptive_ffjord_solve_on_four_devices(repo_root):
    result = _check(repo_root, "otflow,ffjord_dopri5")
    _agree(result["otflow"], param=1e-5, loss=1e-5)
    _agree(result["ffjord_dopri5"], param=1e-2, loss=1e-3)
