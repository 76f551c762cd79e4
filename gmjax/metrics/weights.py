"""A sampler's mode weights beside a tempered target's, from the sampler's own draws."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np


def importance_weight_trace(indicators: np.ndarray, log_f: np.ndarray, log_q: np.ndarray
                            ) -> Dict[str, Any]:
    """The flow's mode weights and the target's, both estimated from draws X_i ~ q.

    ``indicators [n, k]`` (0/1, e.g. ``Target.weight_indicators``), ``log_f`` =
    beta log f(X_i), the tempered target's unnormalized log-density, and
    ``log_q`` = log q(X_i). The flow's weights are the indicator means; the
    target's are their self-normalized importance-sampling estimates under
    p_beta (weights ∝ f^beta / q): consistent whatever q is, as good as their
    effective sample size ``weights_is_ess`` = 1 / sum_i w_i^2 allows.
    ``weights_lag`` = max_k |flow_k - target_k|.
    """
    log_w = np.asarray(log_f, np.float64) - np.asarray(log_q, np.float64)
    w = np.exp(log_w - np.max(log_w))
    w /= w.sum()
    indicators = np.asarray(indicators, np.float64)
    flow = indicators.mean(axis=0)
    est = w @ indicators
    return {"weights_flow": flow.tolist(), "weights_target_is": est.tolist(),
            "weights_is_ess": float(1.0 / np.sum(np.square(w))),
            "weights_lag": float(np.max(np.abs(flow - est)))}
