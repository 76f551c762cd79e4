"""Renders the results tables of the docs from the measured numbers in docs/results/*.json.

    python3 docs/generate_tables.py           # rewrite every generated block in place
    python3 docs/generate_tables.py --check   # exit 1 if any block is out of date

A generated block in README.md or docs/**/*.md is the text between two
marker lines,

    <!-- begin: temperflow_2d -->
    ...
    <!-- end: temperflow_2d -->

and its content is exactly what the renderer named in the marker makes from
its JSON file (``BLOCKS``). The text around a block (the command that made
the numbers, what the columns mean) is written by hand. The JSON files are
written by the table scripts (``experiments/flow_table.py``,
``experiments/cnf_table.py``,
``experiments/temperflow_table.py``, ``experiments/vae_table.py``); this
script only formats them, with the standard library.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join("docs", "results")

BEGIN = re.compile(r"^<!-- begin: ([a-z0-9_]+) -->$")
END = "<!-- end: {name} -->"

Row = Sequence[str]


# ------------------------------------------------------------------------------ formatting

def fixed(x: Optional[float], digits: int = 3) -> str:
    """``x`` with ``digits`` decimals; ``-`` for a missing value."""
    if x is None:
        return "-"
    text = f"{x:.{digits}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def significant(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures, never in scientific notation (0.17, 1.6, 41)."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def seconds(x: float) -> str:
    """Whole seconds with a thousands separator (4,840)."""
    return f"{round(x):,}"


def plus_minus(mean: float, se: float, digits: int = 3) -> str:
    return f"{fixed(mean, digits)} ± {fixed(se, digits)}"


def percent(rate: float) -> str:
    return f"{significant(100 * rate, 2)}%"


def table(header: Row, align: str, rows: List[Row]) -> List[str]:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``."""
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]


# ------------------------------------------------------------------------------ renderers

def flow_toy(data: Dict[str, Dict[str, float]]) -> List[str]:
    """The 2-D density table of ``experiments/flow_table.py`` (``flow_toy_table.json``)."""
    order = ["realnvp", "maf", "spline_coupling", "gmm"]

    def key(name: str) -> Tuple[str, int, str]:
        data_name, model = name.split("/", 1)
        return data_name, order.index(model) if model in order else len(order), model

    rows = []
    for name in sorted(data, key=key):
        r = data[name]
        data_name, model = name.split("/", 1)
        label = "gmm (EM)" if model == "gmm" else model
        rows.append([f"{data_name} / {label}", fixed(r["nll_excess"]), fixed(r["test_nll"]),
                     fixed(r["density_integral"]), seconds(r["train_seconds"])])
    return table(["data / model", "nll_excess (nats)", "test_nll", "density integral",
                  "train s"], "lrrrr", rows)


def diffusion_toy(data: Dict[str, Any]) -> List[str]:
    """The 2-D diffusion table of ``experiments/diffusion_table.py`` (``diffusion_toy.json``):
    sample quality, then the likelihood (probability flow for ``sde``, the bound for ``ddpm``)."""
    rows = []
    for name, r in data["rows"].items():
        data_name, family = name.split("/", 1)
        if "nll_excess" in r or "test_nll" in r:
            nll, excess, how = r.get("test_nll"), r.get("nll_excess"), "probability flow"
        else:
            nll = -r["elbo"] if "elbo" in r else None
            excess, how = r.get("nll_excess_bound"), "bound (-ELBO)"
        rows.append([f"{data_name} / {family}", fixed(r["energy_distance"], 4),
                     fixed(r["adjusted_mmd"], 4), fixed(r["adjusted_w1"], 3), fixed(nll),
                     fixed(excess), how, f"{r['sample_seconds']:.1f}",
                     seconds(r["train_seconds"])])
    return table(["data / model", "energy distance", "adjusted MMD^2", "adjusted W1",
                  "test NLL (nats)", "excess over entropy", "likelihood by", "sample s",
                  "train s"], "lrrrrrlrr", rows)


def cnf_toy(data: Dict[str, Dict[str, float]]) -> List[str]:
    """The continuous-flow table of ``experiments/cnf_table.py`` (``cnf_toy.json``)."""
    order = ["ffjord", "otflow", "flow_matching"]
    labels = {"ffjord": "FFJORD", "otflow": "OT-Flow", "flow_matching": "flow matching"}

    def key(name: str) -> Tuple[str, int, str]:
        data_name, model = name.split("/", 1)
        return data_name, order.index(model) if model in order else len(order), model

    rows = []
    for name in sorted(data, key=key):
        r = data[name]
        data_name, model = name.split("/", 1)
        rows.append([f"{data_name} / {labels.get(model, model)}", fixed(r["nll_excess"]),
                     fixed(r["test_nll"]), str(round(r["nfe_nll"])), str(r["nfe_sample"]),
                     significant(r["sample_seconds"]), seconds(r["train_seconds"]),
                     f"{r['steps']:,}"])
    return table(["data / model", "nll_excess (nats)", "test_nll", "NFE, density",
                  "NFE, sampling", "5,000 samples, s", "train s", "steps"], "lrrrrrrr", rows)


def cnf_tabular(data: Dict[str, Dict[str, Optional[float]]]) -> List[str]:
    """The continuous-flow table on sklearn's tabular data sets (``cnf_tabular.json``): test
    NLL only (no true density), the Gaussian fitted to the training split first."""
    order = ["gaussian", "ffjord", "otflow", "flow_matching"]
    labels = {"gaussian": "Gaussian (fitted to train)", "ffjord": "FFJORD",
              "otflow": "OT-Flow", "flow_matching": "flow matching"}

    def key(name: str) -> Tuple[str, int, str]:
        data_name, model = name.split("/", 1)
        return data_name, order.index(model) if model in order else len(order), model

    def maybe(x: Optional[float], fmt: Callable[[float], str]) -> str:
        return "-" if x is None else fmt(x)

    rows = []
    for name in sorted(data, key=key):
        r = data[name]
        data_name, model = name.split("/", 1)
        rows.append([f"{data_name} / {labels.get(model, model)}", fixed(r["test_nll"]),
                     maybe(r["nfe_nll"], lambda x: str(round(x))),
                     maybe(r["nfe_sample"], str), maybe(r["train_seconds"], seconds),
                     maybe(r["steps"], lambda x: f"{x:,}")])
    return table(["data / model", "test NLL (nats)", "NFE, density", "NFE, sampling",
                  "train s", "steps"], "lrrrrr", rows)


METHOD_LABELS = {"temperflow": "TemperFlow", "kl": "KL sampler",
                 "l2-fixed-grid": "L2, fixed beta grid", "mh": "MH", "hmc": "HMC", "pt": "PT"}


def _mode_row(target: str, label: str, r: Dict[str, Any], train: str, betas: str) -> Row:
    return [target, label, f"{r['modes_captured']}/{r['num_modes']}",
            fixed(r["mode_weight_max_error"]), fixed(r["mode_weight_tv"]),
            plus_minus(r["adjusted_w1"], r["adjusted_w1_se"]), fixed(r["adjusted_mmd"], 4),
            train, significant(r["sample_seconds"]), betas]


def temperflow_2d(runs: List[Dict[str, Any]]) -> List[str]:
    """The 2-D mode table of ``experiments/temperflow_table.py --kind=2d``."""
    targets = list(dict.fromkeys(r["target"] for r in runs))
    methods = list(METHOD_LABELS)
    rows = []
    for target in targets:
        mine = sorted((r for r in runs if r["target"] == target),
                      key=lambda r: methods.index(r["method"]))
        for r in mine:
            is_flow = "num_betas" in r
            train = seconds(r["train_seconds"]) if is_flow else "-"
            betas = str(r["num_betas"]) if is_flow else "-"
            rows.append(_mode_row(target, METHOD_LABELS[r["method"]], r, train, betas))
            rej = r.get("rejection")
            if rej and "error" not in rej:
                label = f"TemperFlow+Rej. (acceptance {fixed(rej['acceptance_rate'])})"
                rows.append(_mode_row(target, label, rej, train, betas))
    return table(["target", "sampler", "modes", "max weight error", "weight TV",
                  "adjusted W1", "adjusted MMD", "train s", "10^4 draws, s", "betas"],
                 "llrrrrrrrr", rows)


_ACCEPTED = re.compile(r"accepted (\d+) of (\d+) proposals")


def _rejection_cells(rej: Dict[str, Any]) -> Tuple[str, str]:
    """(acceptance and max error, seconds for 10^4 draws) of a TemperFlow+Rej. record."""
    if "error" in rej:
        found = _ACCEPTED.search(rej["error"])
        rate = int(found.group(1)) / int(found.group(2)) if found else None
        return (f"{percent(rate)}, below the 1% floor" if rate is not None else "refused"), "-"
    return (f"{percent(rej['acceptance_rate'])}, {fixed(rej['positive_frac_max_error'], 4)}",
            significant(rej["sample_seconds"]))


def clayton(runs: List[Dict[str, Any]]) -> List[str]:
    """The Clayton table (Table S1 layout) of ``experiments/temperflow_table.py --kind=clayton``."""
    rows = []
    for r in sorted(runs, key=lambda r: r["p"]):
        t, mh, hmc, pt = r["temperflow"], r["mh"], r["hmc"], r["pt"]
        rej, rej_seconds = _rejection_cells(t["rejection"])
        draws = " / ".join([significant(t["sample_seconds"]), rej_seconds,
                            *(significant(m["sample_seconds"]) for m in (mh, hmc, pt))])
        rows.append([str(r["p"]), seconds(t["train_seconds"]), str(t["num_betas"]),
                     fixed(t["positive_frac_max_error"], 4),
                     f"{t['sign_patterns_present']}/{t['num_sign_patterns']}",
                     fixed(t["pattern_weight_tv"]),
                     plus_minus(t["adjusted_w1"], t["adjusted_w1_se"]), rej, draws,
                     " / ".join(str(m["sign_patterns_present"]) for m in (mh, hmc, pt))])
    return table(["p", "train s", "betas", "max \\|P(x_j>0) − 0.3\\|", "sign patterns",
                  "pattern TV", "adjusted W1", "+Rej.: acceptance, max error",
                  "10^4 draws, s: TemperFlow / +Rej. / MH / HMC / PT",
                  "patterns found: MH / HMC / PT"], "rrrrrrrlrr", rows)


def clayton_summary(runs: List[Dict[str, Any]]) -> List[str]:
    """One sentence with the Clayton table's headline numbers, for the README."""
    runs = sorted(runs, key=lambda r: r["p"])
    flows = [r["temperflow"] for r in runs]

    def each(values: Sequence[str]) -> str:
        return " / ".join(values)

    if all(t["sign_patterns_present"] == t["num_sign_patterns"] for t in flows):
        patterns = f"all {flows[0]['num_sign_patterns']} sign patterns in every run"
    else:
        patterns = "sign patterns " + each([str(t["sign_patterns_present"]) for t in flows])
    return [f"At p = {each([str(r['p']) for r in runs])}: max |P(x_j > 0) − 0.3| "
            f"{each([fixed(t['positive_frac_max_error'], 4) for t in flows])}, "
            f"{patterns}, "
            f"{each([seconds(t['train_seconds']) for t in flows])} s of training "
            f"with {each([str(t['num_betas']) for t in flows])} betas; one MCMC chain each "
            f"finds {each([str(r['mh']['sign_patterns_present']) for r in runs])} (MH) and "
            f"{each([str(r['pt']['sign_patterns_present']) for r in runs])} (PT) patterns."]


VAE_RUNS = {"vae": "VAE (ELBO, total)", "iwae_k5": "IWAE (k = 5, total)",
            "iwae_k50_dreg": "IWAE (k = 50, dreg)"}


def vae(record: Dict[str, Any]) -> List[str]:
    """The VAE-against-IWAE table of ``experiments/vae_table.py`` (``vae_<data>.json``): the
    runs of ``VAE_RUNS`` present, in that order."""
    runs = [(label, record["runs"][name]["metrics"]) for name, label in VAE_RUNS.items()
            if name in record["runs"]]
    if not runs:
        raise ValueError(f"no run of {', '.join(VAE_RUNS)} in the VAE record")
    iwae_k = {m["iwae_k_samples"] for _, m in runs}
    is_samples = {m["is_samples"] for _, m in runs}
    if len(iwae_k) != 1 or len(is_samples) != 1:
        raise ValueError(f"the runs differ in eval.iwae_samples {sorted(iwae_k)} or "
                         f"eval.is_samples {sorted(is_samples)}")
    rows = [[label, fixed(m["elbo"], 2), fixed(m["iwae_k"], 2),
             f"{fixed(m['is_log_likelihood'], 2)} ± {fixed(m['is_log_likelihood_stderr'])}",
             fixed(m["bits_per_dim"]), seconds(m["train_seconds"])] for label, m in runs]
    return table(["model (objective, estimator)", "ELBO", f"L_{iwae_k.pop()}",
                  f"IS log p(x), k = {is_samples.pop():,}", "bits/dim", "train s"],
                 "lrrrrr", rows)


def gan_modes(data: Dict[str, Any]) -> List[str]:
    """A GAN mode-coverage table (``experiments/gan_table.py``; ``gan_modes.json``: the 25-mode
    grid, ``gan_modes_ring.json``: the 8-mode ring)."""
    rows = []
    for name, r in data["configs"].items():
        per_seed = ", ".join(f"{p['modes_captured']} / {percent(p['high_quality_frac'])}"
                             for p in r["per_seed"])
        rows.append([r.get("label", name), f"`{r['options']}`" if r["options"] else "",
                     str(r["seeds"]), f"{r['modes_mean']:.1f} ± {r['modes_se']:.1f}",
                     f"{100 * r['high_quality_mean']:.1f} ± {100 * r['high_quality_se']:.1f}",
                     per_seed])
    published = data.get("published", {})
    for label, p in published.get("rows", {}).items():
        rows.append([f"{label} (published: {published['source']})", "", "",
                     f"{p['modes']}", f"{p['high_quality_percent']}", ""])
    return table(["configuration", "options", "seeds",
                  f"modes (of {data.get('num_modes', 25)})", "high quality %",
                  "per seed: modes / HQ"], "llrrrl", rows)


def gan_images(data: Dict[str, Any]) -> List[str]:
    """The DCGANs on Fashion-MNIST in the in-repo feature network
    (``experiments/gan_images_table.py``), above the real training images' row."""
    def cells(m: Dict[str, Any]) -> List[str]:
        accuracy = m.get("class_accuracy")
        return [fixed(m["frechet_distance"], 2), fixed(m["kid"], 3), fixed(m["precision"], 2),
                fixed(m["recall"], 2), fixed(m["inception_score"], 2),
                "-" if accuracy is None else f"{100 * accuracy:.1f}%"]

    rows = [[r["label"], f"{r['metrics']['steps']:,}", *cells(r["metrics"]),
             seconds(r["metrics"]["train_seconds"])] for r in data["runs"].values()]
    real = data["real_train_images"]
    rows.append([f"real training images ({real['feature_samples']:,})", "", *cells(real), ""])
    return table(["model", "steps", "Fréchet distance", "KID", "precision", "recall", "IS",
                  "class accuracy", "train s"], "lrrrrrrrr", rows)


def diffusion_images(data: Dict[str, Any]) -> List[str]:
    """A DDPM on images (``experiments/diffusion_images_table.py``; ``diffusion_<data>.json``):
    ancestral sampling over all T steps against DDIM on the same draws, the real training
    images' Fréchet distance at that sample size, then the bound in bits/dim."""
    m = data["metrics"]
    rows = []
    for sampler, label, steps in (("ancestral", "ancestral", data["num_steps"]),
                                  ("ddim", f"DDIM (eta {data['eta']:g})", data["ddim_steps"])):
        fd = m.get(f"{sampler}_frechet_distance")
        rows.append([label, f"{steps:,}", fixed(fd, 2),
                     significant(m[f"{sampler}_sample_seconds_per_image"], 2),
                     seconds(m[f"{sampler}_sample_seconds"])])
    real = data.get("real_train_images")
    if real:
        rows.append([f"real training images ({real['images']:,})", "",
                     fixed(real["frechet_distance"], 2), "", ""])
    draws = m.get("frechet_samples", m["samples_drawn"])
    lines = table(["sampler", "network evaluations", f"Fréchet distance ({draws:,} draws)",
                   "s per image", f"s for {m['samples_drawn']:,}"], "lrrrr", rows)
    return lines + ["", f"Bits/dim (variational bound, discretized decoder, "
                        f"{m['nll_examples']:,} test images): {fixed(m['bits_per_dim'])}; "
                        f"{m['steps']:,} training steps in {seconds(m['train_seconds'])} s."]


# Block name -> (JSON file under docs/results, renderer).
BLOCKS: Dict[str, Tuple[str, Callable[[Any], List[str]]]] = {
    "flow_toy": ("flow_toy_table.json", flow_toy),
    "cnf_toy": ("cnf_toy.json", cnf_toy),
    "cnf_tabular": ("cnf_tabular.json", cnf_tabular),
    "temperflow_2d": ("temperflow_2d.json", temperflow_2d),
    "temperflow_clayton": ("temperflow_clayton.json", clayton),
    "temperflow_clayton_forward_kl": ("temperflow_clayton_forward_kl.json", clayton),
    "temperflow_clayton_summary": ("temperflow_clayton_forward_kl.json", clayton_summary),
    "gan_modes": ("gan_modes.json", gan_modes),
    "gan_modes_ring": ("gan_modes_ring.json", gan_modes),
    "gan_fashion_mnist": ("gan_fashion_mnist.json", gan_images),
    "diffusion_toy": ("diffusion_toy.json", diffusion_toy),
    "diffusion_fashion_mnist": ("diffusion_fashion_mnist.json", diffusion_images),
    "diffusion_mnist": ("diffusion_mnist.json", diffusion_images),
    "vae_digits": ("vae_digits.json", vae),
    "vae_mnist": ("vae_mnist.json", vae),
    "vae_fashion_mnist": ("vae_fashion_mnist.json", vae),
}


def render(name: str, root: str = ROOT) -> List[str]:
    """The lines of block ``name``, from its JSON file under ``root``."""
    if name not in BLOCKS:
        raise ValueError(f"unknown generated block {name!r}; valid: {', '.join(sorted(BLOCKS))}")
    file, renderer = BLOCKS[name]
    with open(os.path.join(root, RESULTS, file)) as f:
        return renderer(json.load(f))


# ------------------------------------------------------------------------------ files

def documents(root: str = ROOT) -> List[str]:
    """README.md and every Markdown file under docs/, as paths relative to ``root``."""
    found = ["README.md"] if os.path.exists(os.path.join(root, "README.md")) else []
    found += sorted(os.path.relpath(p, root)
                    for p in glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return found


def regenerate(text: str, path: str, root: str = ROOT) -> Tuple[str, List[str]]:
    """``text`` with every generated block re-rendered, and the names of the blocks that changed.

    Raises:
      ValueError: a block without its end marker, or with an unknown name.
    """
    lines = text.split("\n")
    out: List[str] = []
    changed: List[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        found = BEGIN.match(lines[i])
        i += 1
        if not found:
            continue
        name = found.group(1)
        end = END.format(name=name)
        try:
            j = lines.index(end, i)
        except ValueError:
            raise ValueError(f"{path}: block {name!r} has no line {end!r}") from None
        new = render(name, root)
        if lines[i:j] != new:
            changed.append(name)
        out.extend(new)
        out.append(end)
        i = j + 1
    return "\n".join(out), changed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a generated block is out of date")
    parser.add_argument("--root", default=ROOT, help="the repository root (default: this one)")
    args = parser.parse_args(argv)
    stale = []
    for path in documents(args.root):
        full = os.path.join(args.root, path)
        with open(full) as f:
            text = f.read()
        try:
            new, changed = regenerate(text, path, args.root)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        stale += [f"{path}: {name}" for name in changed]
        if changed and not args.check:
            with open(full, "w") as f:
                f.write(new)
    if args.check and stale:
        print("out of date (run python3 docs/generate_tables.py):\n  " + "\n  ".join(stale))
        return 1
    if not args.check:
        print("\n".join(f"updated {s}" for s in stale) or "all generated blocks are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
