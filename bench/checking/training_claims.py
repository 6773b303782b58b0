"""The documents' training claims, judged from `sepbench experiments` results over seeds.

Rules (each verdict's note repeats its own):
- an accuracy figure given in whole percent ("about 98-99%", "~99%") holds when the mean over
  seeds rounds into it (98-99%: 97.5% <= mean < 99.5%); the note says whether the 95% interval of
  the mean lies inside too;
- a difference between two models ("1-3 points", "comparable or slightly lower", "faster",
  "lower memory") is first tested against the seed-to-seed noise (Welch's t-test, p < 0.05): a
  difference inside the noise is reported as such, never as a gap or a speed-up;
- the 1998 paper's 0.95% is a reference row: it holds when the error measured here is not
  significantly above it (the paper's figure at or above the lower end of our 95% interval).
"""

from __future__ import annotations

import pandas as pd

from bench.checking.evidence import Evidence, Outcome, claim, untested, verdict
from bench.experiments.seed_stats import Spread, difference, spread

SLACK = 0.005  # half a point: "about 98-99%" is whatever rounds to 98 or 99
CIFAR = ("cifar_cnn", "cifar_cnn_dw")
LENET = ("lenet5", "lenet5_dw")
_EXPERIMENTS = "`make experiments` (or `sepbench data mnist && sepbench experiments`)"
_CIFAR10 = (
    "CIFAR-10 training over seeds: `sepbench data cifar10 && sepbench experiments --group "
    "cifar10` (10 epochs x 3 seeds per model; 391 steps an epoch at the time per step the "
    "cifar_steps group measures: hours on a CPU, minutes on a GPU)"
)
PAPER_RECIPE = (
    "the recipe here differs from the paper's: Adam (lr 1e-3, batch 100, 10 epochs; document "
    "003's optimizer) instead of stochastic diagonal Levenberg-Marquardt over 20 passes with a "
    "step falling from 5e-4 to 1e-5; inputs standardized with MNIST's mean/std instead of the "
    "paper's -0.1/1.175 background/foreground levels; no distortions in either"
)


# --------------------------------------------------------------------------------- reading


def runs_of(ev: Evidence, model: str, datasets: tuple[str, ...]) -> pd.DataFrame | None:
    """The finished runs (one row per seed) of ``model`` on the first of ``datasets`` that has
    any. A compare-training comparison.csv (no status column) counts as one seed."""
    if ev.training is None:
        return None
    t = ev.training
    if "status" in t:
        t = t[t["status"] == "ok"]
    for dataset in datasets:
        rows = t[(t["model"] == model) & (t["dataset"] == dataset)]
        if len(rows):
            return rows
    return None


def pair_of(
    ev: Evidence, models: tuple[str, str], datasets: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Both models' runs on the first dataset that has both."""
    for dataset in datasets:
        a, b = runs_of(ev, models[0], (dataset,)), runs_of(ev, models[1], (dataset,))
        if a is not None and b is not None:
            return a, b
    return None


def _too_few_seeds(
    pair: tuple[pd.DataFrame, pd.DataFrame], method: str, command: str
) -> Outcome | None:
    """An 'untested' outcome when either model has one seed: no spread to judge a gap by."""
    if min(len(pair[0]), len(pair[1])) >= 2:
        return None
    return untested(
        f"at least two seeds per model, to tell a difference from seed-to-seed noise: {command}",
        method,
    )


def _about(s: Spread, lo: float, hi: float) -> tuple[bool, str]:
    """Whether the mean rounds into [lo, hi] (whole percent), and the rule with its interval."""
    ok = lo - SLACK <= s.mean < hi + SLACK
    c_lo, c_hi = s.ci95
    inside = lo - SLACK <= c_lo and c_hi < hi + SLACK
    where = "inside it" if inside else "crossing its edge"
    interval = f"95% interval of the mean {c_lo:.2%}-{c_hi:.2%}, {where}" if s.n > 1 else "1 seed"
    return ok, f"rule: mean over seeds in [{lo - SLACK:.1%}, {hi + SLACK:.1%}) ({interval})"


def _step_time(rows: pd.DataFrame) -> pd.Series:
    """Seconds per training step; a compare-training table has only seconds per epoch (the
    same number of steps for both models of a pair, so their ratio is the same)."""
    return rows["time_per_step_s" if "time_per_step_s" in rows else "time_per_epoch_s"]


# ----------------------------------------------------------------------------- document 001


@claim(
    "cifar-accuracy",
    "001",
    statement=(
        "After 10 epochs on CIFAR-10 the standard CNN reaches about 70-75% test accuracy, the"
        " depthwise CNN about 68-73%."
    ),
    claimed="70-75%; 68-73%",
)
def check_cifar_accuracy(ev: Evidence) -> Outcome:
    method = "test accuracy after training on CIFAR-10, over seeds (comparison.csv)"
    pair = pair_of(ev, CIFAR, ("cifar10",))
    if pair is None:
        return untested(_CIFAR10, method)
    s, d = (spread(rows["test_accuracy"]) for rows in pair)
    ok_s, rule_s = _about(s, 0.70, 0.75)
    ok_d, rule_d = _about(d, 0.68, 0.73)
    return Outcome(
        f"standard {s.text(100, '%')}; depthwise {d.text(100, '%')}",
        method,
        verdict(ok_s and ok_d),
        f"after {int(pair[0]['epochs'].max())} epochs; standard {rule_s}; depthwise {rule_d}",
    )


def _accuracy_gap(ev: Evidence, method: str) -> tuple[Outcome | None, float, bool]:
    """(untested outcome or None, gap = standard - depthwise in points, beyond the noise)."""
    pair = pair_of(ev, CIFAR, ("cifar10",))
    if pair is None:
        return untested(_CIFAR10, method), 0.0, False
    few = _too_few_seeds(pair, method, _CIFAR10)
    if few:
        return few, 0.0, False
    d = difference(pair[0]["test_accuracy"], pair[1]["test_accuracy"])
    return None, d.delta * 100, d.beyond_noise


def _gap_text(ev: Evidence) -> str:
    pair = pair_of(ev, CIFAR, ("cifar10",))
    assert pair is not None
    return difference(pair[0]["test_accuracy"], pair[1]["test_accuracy"]).text(100, " points")


@claim(
    "cifar-accuracy-gap",
    "001",
    statement="Depthwise separable convolution costs 1-3 points of accuracy.",
    claimed="1-3 points",
)
def check_cifar_gap(ev: Evidence) -> Outcome:
    method = "standard minus depthwise test accuracy on CIFAR-10, over seeds, Welch's t-test"
    missing, gap, real = _accuracy_gap(ev, method)
    if missing:
        return missing
    half = SLACK * 100  # points
    ok = real and 1 - half <= gap < 3 + half
    note = (
        "rule: a gap beyond the seed-to-seed noise (p < 0.05) of 1-3 points (0.5 <= gap < 3.5); "
        + ("inside the noise: no measurable cost" if not real else f"gap {gap:.2f} points")
    )
    return Outcome(_gap_text(ev), method, verdict(ok), note)


@claim(
    "cifar-accuracy-comparable",
    "001",
    statement="The depthwise CNN's accuracy is comparable to the standard CNN's or slightly lower.",
    claimed="comparable or slightly lower",
)
def check_cifar_comparable(ev: Evidence) -> Outcome:
    method = "standard minus depthwise test accuracy on CIFAR-10, over seeds, Welch's t-test"
    missing, gap, real = _accuracy_gap(ev, method)
    if missing:
        return missing
    ok = not real or 0 < gap < 3 + SLACK * 100
    note = "rule: inside the noise (comparable), or lower by under 3.5 points beyond it"
    return Outcome(_gap_text(ev), method, verdict(ok), note)


@claim(
    "cifar-train-speed",
    "001",
    statement="The depthwise CNN trains 30-50% faster.",
    claimed="30-50% faster",
)
def check_cifar_speed(ev: Evidence) -> Outcome:
    method = "seconds per training step at batch 128, document 001's recipe, over seeds"
    pair = pair_of(ev, CIFAR, ("synthetic", "cifar10"))
    if pair is None:
        return untested(_EXPERIMENTS + " (its cifar_steps group)", method)
    few = _too_few_seeds(pair, method, _EXPERIMENTS)
    if few:
        return few
    t_std, t_dw = (spread(_step_time(rows)) for rows in pair)
    d = difference(_step_time(pair[0]), _step_time(pair[1]))
    saved, speedup = 1 - t_dw.mean / t_std.mean, t_std.mean / t_dw.mean - 1
    ok = d.beyond_noise and d.delta > 0 and (0.3 <= saved <= 0.5 or 0.3 <= speedup <= 0.5)
    return Outcome(
        f"depthwise {abs(saved):.0%} {'less' if saved >= 0 else 'more'} time per step "
        f"(standard {t_std.text(unit=' s', digits=3)}; "
        f"depthwise {t_dw.text(unit=' s', digits=3)})",
        method + f" on {pair[0]['device'].iloc[0]} ({pair[0]['dataset'].iloc[0]} batches)",
        verdict(ok),
        "rule: faster beyond the seed-to-seed noise, by 30-50% read either as time saved or as "
        f"throughput gained; measured {saved:.0%} time saved, {speedup:+.0%} throughput; "
        f"difference {d.text(unit=' s', digits=3)}",
    )


@claim(
    "cifar-train-memory",
    "001",
    statement="The depthwise CNN uses less memory than the standard CNN.",
    claimed="lower",
)
def check_cifar_memory(ev: Evidence) -> Outcome:
    method = "peak memory of a training run (cifar_steps group), over seeds"
    pair = pair_of(ev, CIFAR, ("synthetic", "cifar10"))
    if pair is None or "peak_memory_mb" not in pair[0]:
        return untested(_EXPERIMENTS + " (its cifar_steps group)", method)
    few = _too_few_seeds(pair, method, _EXPERIMENTS)
    if few:
        return few
    m_std, m_dw = (spread(rows["peak_memory_mb"]) for rows in pair)
    d = difference(pair[1]["peak_memory_mb"], pair[0]["peak_memory_mb"])
    return Outcome(
        f"standard {m_std.text(unit=' MiB', digits=0)}; "
        f"depthwise {m_dw.text(unit=' MiB', digits=0)}",
        method + f": {pair[0]['memory_measure'].iloc[0]}",
        verdict(d.beyond_noise and d.delta < 0),
        f"rule: lower beyond the seed-to-seed noise; depthwise minus standard "
        f"{d.text(unit=' MiB', digits=0)}",
    )


@claim(
    "lenet-dw-faster",
    "000",
    statement="Making LeNet-5's convolutions depthwise-separable makes it significantly faster.",
    claimed="faster",
)
def check_lenet_dw_faster(ev: Evidence) -> Outcome:
    method = "seconds per training step, lenet5_dw vs lenet5 on MNIST, over seeds"
    pair = pair_of(ev, LENET, ("mnist",))
    if pair is None:
        return untested(_EXPERIMENTS, method)
    few = _too_few_seeds(pair, method, _EXPERIMENTS)
    if few:
        return few
    t_std, t_dw = (spread(_step_time(rows)) for rows in pair)
    d = difference(_step_time(pair[1]), _step_time(pair[0]))
    return Outcome(
        f"{t_dw.mean / t_std.mean:.2f}x the standard's time per step",
        method + f" on {pair[0]['device'].iloc[0]}",
        verdict(d.beyond_noise and d.delta < 0),
        f"rule: less time per step beyond the seed-to-seed noise; standard "
        f"{t_std.text(unit=' s', digits=4)}, depthwise {t_dw.text(unit=' s', digits=4)}",
    )


# ------------------------------------------------------------------------ documents 000, 003


def _lenet_accuracy(ev: Evidence, lo: float, hi: float) -> Outcome:
    method = "test accuracy of lenet5 on MNIST after training (document 003's recipe), over seeds"
    rows = runs_of(ev, "lenet5", ("mnist",))
    if rows is None:
        return untested(_EXPERIMENTS, method)
    s = spread(rows["test_accuracy"])
    ok, rule = _about(s, lo, hi)
    epochs = int(rows["epochs"].max())
    return Outcome(s.text(100, "%"), method, verdict(ok), f"after {epochs} epochs; {rule}")


@claim(
    "lenet-accuracy",
    "003",
    statement="LeNet-5 reaches about 98-99% MNIST test accuracy after 10 epochs.",
    claimed="98-99%",
)
def check_lenet_accuracy(ev: Evidence) -> Outcome:
    return _lenet_accuracy(ev, 0.98, 0.99)


@claim(
    "lenet-accuracy-99",
    "003",
    statement="Trained properly (10-20 epochs), LeNet-5 reaches about 99% on the MNIST test set.",
    claimed="~99%",
)
def check_lenet_99(ev: Evidence) -> Outcome:
    return _lenet_accuracy(ev, 0.99, 0.99)


@claim(
    "lenet-loss-decreases",
    "003",
    statement="The training loss decreases over the epochs.",
    claimed="decreasing",
)
def check_loss_decreases(ev: Evidence) -> Outcome:
    method = "training loss per epoch of lenet5 on MNIST, mean over seeds (runs/*.csv)"
    e = ev.training_epochs
    rows = None if e is None else e[(e["model"] == "lenet5") & (e["dataset"] == "mnist")]
    if rows is None or rows.empty:
        return untested(_EXPERIMENTS, method)
    mean = rows.groupby("epoch")["train_loss"].mean()
    rises = (
        rows.sort_values("epoch")
        .groupby("seed")["train_loss"]
        .apply(lambda s: int((s.diff() > 0).sum()))
    )
    falls = bool((mean.diff().dropna() < 0).all())
    return Outcome(
        f"{mean.iloc[0]:.4f} (epoch 1) -> {mean.iloc[-1]:.4f} (epoch {int(mean.index[-1])})",
        method,
        verdict(falls),
        "rule: the seed-mean loss falls at every epoch; single seeds rose at "
        f"{int(rises.sum())} of {int(rises.size * (len(mean) - 1))} epoch steps",
    )


@claim(
    "lenet-cpu-minutes",
    "003",
    statement="Training LeNet-5 on MNIST takes a few minutes on a modern CPU.",
    claimed="a few minutes",
)
def check_cpu_minutes(ev: Evidence) -> Outcome:
    method = "training time of lenet5's 10 MNIST epochs on a CPU, over seeds"
    rows = runs_of(ev, "lenet5", ("mnist",))
    if rows is not None and "train_time_s" in rows:
        rows = rows[~rows["device"].astype(str).str.upper().str.startswith("NVIDIA")]
    if rows is None or rows.empty or "train_time_s" not in rows:
        return untested(_EXPERIMENTS + " on a CPU", method)
    minutes = spread(rows["train_time_s"] * 10 / rows["epochs"] / 60)
    first = rows.iloc[0]
    return Outcome(
        minutes.text(unit=" min", digits=1),
        method + f" ({first['device']}, {first['threads']} thread(s), "
        f"{first['concurrent_runs']} runs at a time)",
        verdict(minutes.mean < 10),
        "rule: 'a few minutes' read as under 10; training steps only (evaluation excluded), "
        "scaled to 10 epochs from the epochs run",
    )


@claim(
    "lenet-paper-0.95",
    "1998",
    statement=(
        "LeNet-5 reaches 0.95% test error on MNIST without distortions (LeCun et al. 1998; "
        "the reference figure)."
    ),
    claimed="0.95% error",
)
def check_paper_error(ev: Evidence) -> Outcome:
    method = "test error of lenet5_paper (the paper's network, RBF output and loss) on MNIST"
    rows = runs_of(ev, "lenet5_paper", ("mnist",))
    if rows is None:
        return untested(_EXPERIMENTS, method)
    s = spread(rows["test_error"] if "test_error" in rows else 1 - rows["test_accuracy"])
    low = s.ci95[0]
    return Outcome(
        s.text(100, "%"),
        method + f", {int(rows['epochs'].max())} epochs, over seeds",
        verdict(low <= 0.0095),
        f"rule: holds unless the error is significantly above 0.95% (lower end of the 95% "
        f"interval: {low:.2%}); {PAPER_RECIPE}",
    )
