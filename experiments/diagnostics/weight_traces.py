"""Overlay the mode-weight traces of several TemperFlow runs (Clayton: P(x_j > 0)).

    python experiments/diagnostics/weight_traces.py --out runs/p8_weight_traces.png \
        runs/temperflow_clayton/p8-temperflow runs/temperflow_clayton_fkl/p8-temperflow

Reads each run's ``metrics.jsonl`` (stage records with ``weights_flow`` and
``weights_target_is``, written when ``eval.stage_weight_draws > 0``) and plots,
against beta, the flow's weights averaged over the indicators (solid) and the
importance-sampling estimate of the tempered target's from the flow's own draws
(dashed), with the error bars spanning the indicators' smallest and largest.
Prints one line per stage.

The flow's own estimate is only as good as the flow is as a proposal: its
importance weights see only where the flow draws. So, for Clayton,
``--truth_draws`` (default 4 * 10^6) also estimates the tempered target's
P_beta(x_j > 0) on a beta grid by importance sampling from a defensive mixture
(``ClaytonTarget.tempered_positive_fraction``): half exact draws of p_1 (its
density is normalized), half a broad product of two-point mixtures (±1, sd 0.4)
on the first 8 coordinates and N(0, 1) on the rest. At p = 8 with 10^7 draws
this gives 0.2998 and log U_1 = -0.0001 at beta = 1 (truth 0.3 and 0), with an
effective sample size of 2 * 10^4 at beta = 0.1 and millions from beta = 0.2.
Stages of the final reverse-KL refinement (phase ``refine``, also at beta = 1)
are drawn just right of beta = 1.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from absl import app, flags

from gmjax.samplers.temperflow import REFINE
from gmjax.targets import build_target
from gmjax.training.logging import read_jsonl
from gmjax.viz.figure import legend, plt, save_figure, style_axes

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("out", None, "Where to write the figure (.png).")
    flags.DEFINE_float("truth", 0.3, "The weights' value at beta = 1, drawn as a line.")
    flags.DEFINE_string("title", "", "Figure title.")
    flags.DEFINE_integer("truth_draws", 4_000_000, "Clayton: draws for the tempered target's "
                         "P_beta(x_j > 0) on a beta grid (0: do not estimate it).")
    flags.DEFINE_integer("dim", 8, "Clayton: the dimension p of the runs.")
    flags.DEFINE_float("min_truth_ess", 1000.0, "Plot the truth only at betas where its "
                       "importance weights have at least this effective sample size.")


TRUTH_BETAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


def stage_rows(workdir: str) -> List[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: pass the workdir of an "
                                f"experiments/temperflow.py run")
    rows = [r for r in read_jsonl(path) if "weights_flow" in r]
    if not rows:
        raise ValueError(f"{path} has no stage weight records; the run needs "
                         f"eval.stage_weight_draws > 0")
    return rows


def plot(workdirs: Sequence[str], out: str, truth: float, title: str,
         curve: Optional[Dict[str, np.ndarray]] = None, min_truth_ess: float = 1000.0) -> str:
    """P(x_j > 0) against beta (left) and, for Clayton runs that record the flow's sign
    counts, the share with all 8 signs negative (right; 0.327 at beta = 1)."""
    runs = [(workdir, stage_rows(workdir)) for workdir in workdirs]
    counts = any("sign_counts_flow" in r for _, rows in runs for r in rows)
    fig, axes = plt.subplots(1, 2 if counts else 1, figsize=(11.5 if counts else 6.5, 4.2),
                             squeeze=False)
    ax, ax_neg = axes[0, 0], (axes[0, 1] if counts else None)
    if curve is not None:
        ok = curve["ess"] >= min_truth_ess
        label = f"p_beta, defensive IS (truth; ESS >= {min_truth_ess:g})"
        ax.plot(curve["beta"][ok], curve["mean"][ok], "k-", marker="s", ms=3, lw=1.5,
                label=label)
        if ax_neg is not None:
            ax_neg.plot(curve["beta"][ok], curve["counts"][ok, -1], "k-", marker="s", ms=3,
                        lw=1.5, label=label)
    for k, (workdir, rows) in enumerate(runs):
        color = plt.cm.tab10(k % 10)
        # The final reverse-KL refinement, also at beta = 1, is drawn just right of it.
        x = np.array([r["beta"] + 0.03 * (r["phase"] == REFINE) for r in rows])
        flow = np.array([r["weights_flow"] for r in rows])
        est = np.array([r["weights_target_is"] for r in rows])
        label = os.path.basename(os.path.normpath(workdir))
        ax.errorbar(x, flow.mean(1), yerr=[flow.mean(1) - flow.min(1), flow.max(1) - flow.mean(1)],
                    color=color, marker="o", ms=3, lw=1.3, capsize=2, label=f"{label}: flow")
        ax.plot(x, est.mean(1), "--", color=color, lw=1, label=f"{label}: p_beta by IS")
        neg = [r.get("sign_counts_flow", [np.nan] * 9)[-1] for r in rows]
        if ax_neg is not None and not np.all(np.isnan(neg)):
            ax_neg.plot(x, neg, color=color, marker="o", ms=3, lw=1.3, label=f"{label}: flow")
        print(label)
        for r, f, e, n in zip(rows, flow, est, neg):
            print(f"  stage {r['stage']:2d} {r['loss']} beta {r['beta']:.3f}  flow {f.mean():.3f} "
                  f"[{f.min():.3f}, {f.max():.3f}]  IS {e.mean():.3f}  "
                  f"ESS {r['weights_is_ess']:.0f}"
                  + (f"  all 8 negative {n:.3f}" if np.isfinite(n) else ""))
    ax.axhline(truth, color="k", ls=":", lw=1, label=f"truth at beta = 1 ({truth})")
    style_axes(ax, "beta (inverse temperature)",
               "P(x_j > 0): mean over j (bars: min to max)",
               "mode weights P(x_j > 0) along the tempering curve")
    legend(ax)
    if ax_neg is not None:
        style_axes(ax_neg, "beta (inverse temperature)", "P(x_1, ..., x_8 all < 0)",
                   "share of draws with all 8 bimodal coordinates negative")
        legend(ax_neg)
    return save_figure(fig, out, title)


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("pass one or more run directories")
    if not FLAGS.out:
        raise app.UsageError("--out is required (the figure's path)")
    curve = None
    if FLAGS.truth_draws:
        curve = build_target("clayton", dim=FLAGS.dim).tempered_positive_fraction(
            TRUTH_BETAS, FLAGS.truth_draws)
        print("tempered Clayton target, P_beta(x_j > 0) by defensive importance sampling:")
        for i, beta in enumerate(curve["beta"]):
            print(f"  beta {beta:.2f}  mean {curve['mean'][i]:.4f} [{curve['min'][i]:.4f}, "
                  f"{curve['max'][i]:.4f}]  ESS {curve['ess'][i]:.0f}  "
                  f"log U {curve['log_u'][i]:.4f}")
        print("  and P_beta(k of the first 8 coordinates negative), k = 0 ... 8:")
        for i, beta in enumerate(curve["beta"]):
            print(f"  beta {beta:.2f}  " + " ".join(f"{c:.3f}" for c in curve["counts"][i]))
    print(plot(argv[1:], FLAGS.out, FLAGS.truth, FLAGS.title, curve, FLAGS.min_truth_ess))


if __name__ == "__main__":
    define_flags()
    app.run(main)
