"""The documents' quantitative claims about costs, counts and speed, each declared on the check
that judges it: formulas and fvcore counts, the models' layers, and (when a report's results.csv
is given) measured latencies. The training claims live in bench.checking.training_claims.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from bench import formulas
from bench.checking.evidence import Evidence, Outcome, claim
from bench.checking.evidence import in_range as _in_range
from bench.checking.evidence import untested as _untested
from bench.checking.evidence import verdict as _verdict
from bench.counting.counters import FVCORE_MISSING, count_model, fvcore_available
from bench.measuring.operators import DWSEP
from bench.measuring.operators.dwsep import RUNTIME_PAIRS
from bench.measuring.operators.model import RUNTIME_PROVIDERS
from bench.measuring.operators.peers import RUNTIMES
from bench.measuring.suites import HEADLINE_ID
from models import registry

# The latency claim reads this workload of the report's "documents" suite.
EXAMPLE_WORKLOAD = HEADLINE_ID


def _fvcore_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """fvcore's count; where fvcore is missing the check stops, and its claim is untested."""
    if not fvcore_available():
        raise RuntimeError(FVCORE_MISSING)
    return int(count_model(module, input_shape).iloc[-1]["macs_fvcore"])


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _separable_modules(d: int, r: int, f: int) -> tuple[nn.Module, nn.Module]:
    standard = nn.Conv2d(d, r, f, padding=f // 2, bias=False)
    separable = nn.Sequential(
        nn.Conv2d(d, d, f, padding=f // 2, groups=d, bias=False), nn.Conv2d(d, r, 1, bias=False)
    )
    return standard, separable


# Configurations (d, r, f, p) on which the formulas are checked against fvcore and module params:
# the documents' shapes plus odd ones.
_FORMULA_CASES = [
    (1, 6, 5, 28),
    (6, 16, 5, 10),
    (16, 120, 5, 1),
    (3, 32, 3, 32),
    (128, 256, 3, 32),
    (7, 13, 3, 9),
    (5, 11, 7, 6),
]


@functools.cache
def _measured_case(d: int, r: int, f: int, p: int) -> dict[str, int]:
    standard, separable = _separable_modules(d, r, f)
    dw, pw = separable[0], separable[1]
    shape = (d, p, p)
    return {
        "std_macs": _fvcore_macs(standard, shape),
        "dw_macs": _fvcore_macs(dw, shape),
        "pw_macs": _fvcore_macs(pw, shape),
        "std_params": _trainable(standard),
        "dw_params": _trainable(dw),
        "pw_params": _trainable(pw),
    }


_CIFAR_SEPARABLE_LAYERS = [(3, 32, 32), (32, 64, 32), (64, 128, 32), (128, 256, 16)]


def _model_totals(ev: Evidence, name: str) -> pd.Series:
    return ev.counts(name).iloc[-1]


def _ok_rows(ev: Evidence) -> pd.DataFrame | None:
    if ev.results is None or "status" not in ev.results:
        return None
    return ev.results[ev.results["status"] == "ok"]


def _latency(rows: pd.DataFrame, workload: str, provider: str) -> pd.DataFrame:
    return rows[(rows["workload"] == workload) & (rows["provider"] == provider)]


def _paired_latency(
    rows: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]
) -> tuple[float, float, str] | None:
    """Median latencies of (workload, provider) a and b at their largest common batch, fp32
    preferred: both from one run."""
    la, lb = _latency(rows, *a), _latency(rows, *b)
    keys = ["dtype", "batch"]
    merged = la.merge(lb, on=keys, suffixes=("_a", "_b"))
    if merged.empty:
        return None
    merged = merged.assign(fp32=merged["dtype"].astype(str).str.contains("float32"))
    best = merged.sort_values(["fp32", "batch"]).iloc[-1]
    where = f"{best['dtype']}, batch {int(best['batch'])}, {best.get('device_a', '')}"
    return float(best["latency_ms_p50_a"]), float(best["latency_ms_p50_b"]), where


def _param_outcome(ev: Evidence, model: str, layer: str, value: int) -> Outcome:
    got = int(ev.layer(model, layer)["trainable"])
    return Outcome(f"{got:,}", f"trainable parameters of {model}.{layer}", _verdict(got == value))


@claim(
    "dw-cost-formulas",
    "000",
    statement=(
        "Standard conv costs f^2 d r p^2 multiplications and f^2 d r weights; depthwise f^2 d"
        " p^2 and f^2 d; pointwise d r p^2 and d r."
    ),
    claimed="the six formulas",
)
def _check_cost_formulas(_: Evidence) -> Outcome:
    bad = []
    for d, r, f, p in _FORMULA_CASES:
        m = _measured_case(d, r, f, p)
        expected = {  # document 000's expressions, written out literally
            "std_macs": f * f * d * r * p * p,
            "dw_macs": f * f * d * p * p,
            "pw_macs": d * r * p * p,
            "std_params": f * f * d * r,
            "dw_params": f * f * d,
            "pw_params": d * r,
        }
        bad += [f"{key} at (d={d}, r={r}, f={f}, p={p})" for key in m if m[key] != expected[key]]
    total = len(_FORMULA_CASES) * 6
    return Outcome(
        f"{total - len(bad)}/{total} counts equal",
        "six formulas vs fvcore MACs and module parameter counts on "
        f"{len(_FORMULA_CASES)} configurations (bias off, 'same' padding)",
        _verdict(not bad),
        "mismatches: " + "; ".join(bad) if bad else "every formula equals fvcore's count",
    )


@claim(
    "dw-ratio-exact",
    "000",
    statement="Separable over standard cost is (f^2 d + d r) / (f^2 d r).",
    claimed="(f^2 d + d r)/(f^2 d r)",
)
def _check_ratio_exact(_: Evidence) -> Outcome:
    worst = 0.0
    for d, r, f, p in _FORMULA_CASES:
        m = _measured_case(d, r, f, p)
        measured = (m["dw_macs"] + m["pw_macs"]) / m["std_macs"]
        worst = max(worst, abs(measured / formulas.separable_ratio(f, d, r) - 1))
    return Outcome(
        f"max relative difference {worst:.1e}",
        "(f^2 d + d r)/(f^2 d r) vs fvcore separable/standard MACs",
        _verdict(worst < 1e-12),
        "the ratio is exact; it simplifies algebraically to 1/r + 1/f^2",
    )


@claim(
    "dw-ratio-approx",
    "000",
    statement="For large r that ratio is approximately 1/r + 1/f^2.",
    claimed="~ 1/r + 1/f^2",
)
def _check_ratio_approx(_: Evidence) -> Outcome:
    worst = max(
        abs(formulas.separable_ratio(f, d, r) - (1 / r + 1 / f**2)) for d, r, f, _ in _FORMULA_CASES
    )
    return Outcome(
        f"max |exact - (1/r + 1/f^2)| = {worst:.1e}",
        "exact ratio vs the approximation, all configurations",
        _verdict(worst < 1e-12),
        "not an approximation: (f^2 d + d r)/(f^2 d r) = 1/r + 1/f^2 exactly, for every r",
    )


@claim(
    "dw-ratio-large-r",
    "000",
    statement=(
        "For f = 3 and large r the ratio is about 1/r, so separable convolution cuts "
        "computation by a factor of about r."
    ),
    claimed="~ 1/r",
)
def _check_ratio_large_r(_: Evidence) -> Outcome:
    f, d = 3, 128
    rows = []
    for r in (64, 256, 1024, 4096):
        ratio = formulas.separable_ratio(f, d, r)
        rows.append((r, ratio, ratio * r))
    r, ratio, times = rows[-1]
    limit = formulas.separable_ratio_limit(f)
    return Outcome(
        f"ratio at r={r}: {ratio:.4f} = {times:.0f} x (1/r); limit {limit:.4f}",
        "document 000's exact ratio for f=3 at r = 64..4096",
        _verdict(abs(ratio - 1 / r) <= 0.5 * ratio),
        f"as r grows the ratio tends to 1/f^2 = 1/9 = {limit:.4f}, not to 1/r: a 3x3 separable "
        f"conv saves at most {1 / limit:.0f}x, whatever r is ("
        + ", ".join(f"r={rr}: {1 / q:.2f}x" for rr, q, _ in rows)
        + ")",
    )


@claim(
    "cifar-conv-3-32-params",
    "001",
    statement="nn.Conv2d(3, 32, kernel_size=3, padding=1) has 3 x 32 x 3 x 3 parameters.",
    claimed="864",
)
def _check_conv_3_32(_: Evidence) -> Outcome:
    layer = nn.Conv2d(in_channels=3, out_channels=32, kernel_size=3, padding=1)
    total, weights = _trainable(layer), layer.weight.numel()
    return Outcome(
        f"{total} ({weights} weights + {layer.bias.numel()} biases)",
        "parameters of nn.Conv2d(3, 32, 3, padding=1) as the document writes it",
        _verdict(total == 864),
        f"{weights} counts the weights only; the layer as written keeps PyTorch's default bias",
    )


@claim(
    "cifar-dwsep-3-32-params",
    "001",
    statement="The depthwise-separable 3->32 block has 27 depthwise and 96 pointwise parameters.",
    claimed="27 + 96 = 123",
)
def _check_dwsep_3_32(_: Evidence) -> Outcome:
    from models.blocks import DepthwiseSeparable

    block = DepthwiseSeparable(3, 32)
    conv = block.dw.weight.numel() + block.pw.weight.numel()
    bn = _trainable(block) - conv
    return Outcome(
        f"{block.dw.weight.numel()} + {block.pw.weight.numel()} = {conv} conv weights",
        "parameters of the document's conv_dw(3, 32) (models.blocks.DepthwiseSeparable)",
        _verdict(conv == 123),
        f"the two BatchNorms add {bn} more trainable parameters: the block holds {conv + bn}",
    )


@claim(
    "cifar-reduction-7-9x",
    "001",
    statement=(
        "A separable 3x3 conv needs about 1/oup + 1/9 of the standard cost: a 7-9x reduction."
    ),
    claimed="7-9x",
)
def _check_reduction_7_9(_: Evidence) -> Outcome:
    factors = []
    for d, r, p in _CIFAR_SEPARABLE_LAYERS:
        m = _measured_case(d, r, 3, p)
        factors.append((d, r, m["std_macs"] / (m["dw_macs"] + m["pw_macs"])))
    ok = all(_in_range(x, 7, 9) for *_, x in factors)
    return Outcome(
        ", ".join(f"{d}->{r}: {x:.2f}x" for d, r, x in factors),
        "fvcore MACs of standard vs separable 3x3 for the four separable layers of the model",
        _verdict(ok),
        f"1/32 + 1/9 = {1 / 32 + 1 / 9:.4f}, i.e. {1 / (1 / 32 + 1 / 9):.2f}x for 3->32; "
        "the factor tends to 9x as the output channels grow",
    )


@claim(
    "cifar-example-8.7x",
    "001",
    statement=(
        "128->256 at 32x32: 301,989,888 standard vs 1,179,648 + 33,554,432 = 34,734,080 "
        "separable operations, about 8.7x fewer."
    ),
    claimed="8.7x",
)
def _check_example(_: Evidence) -> Outcome:
    m = _measured_case(128, 256, 3, 32)
    claimed = {"std_macs": 301_989_888, "dw_macs": 1_179_648, "pw_macs": 33_554_432}
    total = m["dw_macs"] + m["pw_macs"]
    ratio = m["std_macs"] / total
    ok = (
        all(m[k] == v for k, v in claimed.items())
        and total == 34_734_080
        and round(ratio, 1) == 8.7
    )
    return Outcome(
        f"{m['std_macs']:,} vs {m['dw_macs']:,} + {m['pw_macs']:,} = {total:,}: {ratio:.3f}x",
        "fvcore on the modules at 32x32",
        _verdict(ok),
        "the counts are multiply-accumulates (FLOPs are twice these); note the model itself runs "
        "128->256 at 16x16, after the first max-pool",
    )


@claim(
    "cifar-model-params",
    "001",
    statement="The standard CNN has about 10-15M parameters, the depthwise CNN about 1-2M.",
    claimed="10-15M; 1-2M",
)
def _check_model_params(ev: Evidence) -> Outcome:
    std = int(_model_totals(ev, "cifar_cnn")["trainable"])
    dw = int(_model_totals(ev, "cifar_cnn_dw")["trainable"])
    fc = int(ev.layer("cifar_cnn", "classifier.1")["trainable"])
    ok = _in_range(std, 10e6, 15e6) and _in_range(dw, 1e6, 2e6)
    return Outcome(
        f"standard {std:,}; depthwise {dw:,}",
        "trainable parameters of the two models as the document's diagrams list them",
        _verdict(ok),
        f"FC(16384->1024) alone holds {fc:,} parameters ({fc / std:.0%} of the standard model) "
        "and both models keep it",
    )


@claim(
    "cifar-model-8-9x",
    "001",
    statement=(
        "The depthwise-separable CNN has about 8-9x fewer parameters and FLOPs than the "
        "standard CNN."
    ),
    claimed="8-9x",
)
def _check_model_8_9(ev: Evidence) -> Outcome:
    std, dw = _model_totals(ev, "cifar_cnn"), _model_totals(ev, "cifar_cnn_dw")
    pr = std["trainable"] / dw["trainable"]
    mr = std["macs_fvcore"] / dw["macs_fvcore"]
    return Outcome(
        f"parameters {pr:.2f}x, MACs {mr:.2f}x fewer",
        "whole-model totals (trainable params; fvcore MACs) of cifar_cnn vs cifar_cnn_dw",
        _verdict(_in_range(pr, 8, 9) and _in_range(mr, 8, 9)),
        "the 8-9x holds per separable layer, not per model: the twin keeps the two 3x3 convs "
        "128->128 and 256->256 (most of the MACs) and the FC layers (most of the parameters)",
    )


def runtime_claim(
    claim_id: str, document: str, *, statement: str, claimed: str
) -> Callable[[Callable[[Evidence, str], Outcome]], Callable[[Evidence, str], Outcome]]:
    """Declare a speed claim once per runtime of peers.RUNTIMES: ``claim_id`` for PyTorch eager
    (the documents' own), ``claim_id@<runtime>`` for each other; the check gets the runtime."""

    def register(
        check: Callable[[Evidence, str], Outcome],
    ) -> Callable[[Evidence, str], Outcome]:
        for runtime in RUNTIMES:
            cid = claim_id if runtime == "pytorch" else f"{claim_id}@{runtime}"
            judge = functools.partial(check, runtime=runtime)
            functools.update_wrapper(judge, check)
            claim(cid, document, statement=statement, claimed=claimed)(judge)
        return check

    return register


def _why_missing(ev: Evidence, wanted: list[tuple[str, str]]) -> str:
    """What keeps (workload, provider) rows from a runtime's verdict: the message of a row that
    is there but not ok (a missing package says so), else that the run has no such row."""
    res = ev.results
    for workload, provider in wanted:
        rows = _latency(res, workload, provider) if res is not None else None
        if rows is None or rows.empty:
            continue
        bad = rows[rows["status"] != "ok"]
        if len(bad) == len(rows):
            msg = str(bad.iloc[-1].get("message", "") or bad.iloc[-1]["status"])
            return f"{provider} on {workload} did not run here: {msg}"
    return ""


def _runtime_untested(ev: Evidence, needs: str, method: str, wanted: list) -> Outcome:
    """Untested: the reason a runtime's rows did not run where they are there, else what
    would test it."""
    why = _why_missing(ev, wanted)
    return Outcome("not measured", method, "untested", why) if why else _untested(needs, method)


def _formula_ratio(std: pd.Series, sep: pd.Series) -> float:
    """The operation ratio of two rows (their formula MACs), NaN where a row has none."""
    try:
        return float(std["macs"]) / float(sep["macs"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return float("nan")


def _ratio_text(measured: float, formula: float) -> str:
    """The measured ratio beside the formula's (where the rows carry MACs)."""
    if formula != formula:  # NaN
        return f"{measured:.2f}x"
    return f"{measured:.2f}x (formula {formula:.2f}x)"


def _paired_rows(
    rows: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]
) -> tuple[pd.Series, pd.Series, str] | None:
    """The rows of a and b at their largest common batch, fp32 preferred (as _paired_latency)."""
    la, lb = _latency(rows, *a), _latency(rows, *b)
    merged = la.reset_index().merge(lb.reset_index(), on=["dtype", "batch"], suffixes=("_a", "_b"))
    if merged.empty:
        return None
    merged = merged.assign(fp32=merged["dtype"].astype(str).str.contains("float32"))
    best = merged.sort_values(["fp32", "batch"]).iloc[-1]
    where = f"{best['dtype']}, batch {int(best['batch'])}, {best.get('device_a', '')}"
    return rows.loc[best["index_a"]], rows.loc[best["index_b"]], where


@runtime_claim(
    "cifar-latency-8.7x",
    "001",
    statement="The 8.7x fewer operations of the 128->256 example are an 8.7x speed-up.",
    claimed="8.7x",
)
def _check_latency_8_7(ev: Evidence, runtime: str) -> Outcome:
    standard, separable = RUNTIME_PAIRS[runtime]
    method = (
        f"measured median latency on {RUNTIMES[runtime]}, workload {EXAMPLE_WORKLOAD}: "
        f"{standard} vs {separable}"
    )
    rows = _ok_rows(ev)
    wanted = [(EXAMPLE_WORKLOAD, standard), (EXAMPLE_WORKLOAD, separable)]
    pair = None if rows is None else _paired_rows(rows, *wanted)
    if pair is None:
        return _runtime_untested(
            ev,
            "a report's results.csv with the documents suite (`sepbench report "
            "--suite documents`, then `sepbench claims --results DIR`)",
            method,
            wanted,
        )
    std, sep, where = pair
    speedup = std["latency_ms_p50"] / sep["latency_ms_p50"]
    formula = _formula_ratio(std, sep)
    note = (
        f"{where}; standard {std['latency_ms_p50']:.4f} ms, separable "
        f"{sep['latency_ms_p50']:.4f} ms ({sep.get('backend', '')})"
    )
    if runtime == "pytorch":
        fused = _paired_latency(
            rows, (EXAMPLE_WORKLOAD, standard), (EXAMPLE_WORKLOAD, DWSEP.names("fused")[0])
        )
        if fused is not None:
            note += f"; fused Triton kernel {fused[0] / fused[1]:.2f}x"
    # 8.7x is the operation ratio; a latency ratio within 20% of it counts as delivered.
    return Outcome(_ratio_text(speedup, formula), method, _verdict(speedup >= 0.8 * 8.7), note)


@runtime_claim(
    "dw-separable-faster",
    "001",
    statement=(
        "A depthwise-separable convolution is faster than the standard convolution it replaces "
        "(the comparison table: Speed, slower vs faster)."
    ),
    claimed="faster",
)
def _check_separable_faster(ev: Evidence, runtime: str) -> Outcome:
    standard, separable = RUNTIME_PAIRS[runtime]
    method = (
        f"measured median latency on {RUNTIMES[runtime]}, every dw-sep workload of the run: "
        f"{standard} vs {separable}"
    )
    rows = _ok_rows(ev)
    workloads = [] if rows is None else sorted(set(rows["workload"]))
    found = []
    for w in workloads:
        if not str(w).startswith("dwsep_"):
            continue
        pair = _paired_rows(rows, (w, standard), (w, separable))
        if pair is not None:
            std, sep, _ = pair
            found.append(
                (w, std["latency_ms_p50"] / sep["latency_ms_p50"], _formula_ratio(std, sep))
            )
    if not found:
        res = ev.results
        wanted = (
            []
            if res is None
            else [
                (w, p)
                for w in sorted(set(res["workload"]))
                if str(w).startswith("dwsep_")
                for p in (standard, separable)
            ]
        )
        return _runtime_untested(ev, "a report's results.csv with dw-sep workloads", method, wanted)
    slower = [(w, r) for w, r, _ in found if r <= 1.0]
    lo, hi = min(r for _, r, _ in found), max(r for _, r, _ in found)
    flo, fhi = min(f for *_, f in found), max(f for *_, f in found)
    measured = f"faster on {len(found) - len(slower)} of {len(found)} shapes; {lo:.2f}x-{hi:.2f}x"
    if flo == flo:
        measured += f" (formula {flo:.2f}x-{fhi:.2f}x)"
    note = "holds only if faster on every shape measured"
    if slower:
        note = "slower on " + ", ".join(f"{w} ({r:.2f}x)" for w, r in slower[:4])
        note += f" and {len(slower) - 4} more" if len(slower) > 4 else ""
    return Outcome(measured, method, _verdict(not slower), note)


def _model_pair_outcome(
    ev: Evidence, runtime: str, pairs: tuple[tuple[str, str], ...], what: str
) -> Outcome:
    provider = RUNTIME_PROVIDERS[runtime]
    names = "; ".join(f"{a} vs {b}" for a, b in pairs)
    method = f"measured median latency on {RUNTIMES[runtime]} ({provider}): {names}"
    rows = _ok_rows(ev)
    parts, faster = [], []
    for std_name, dw_name in pairs:
        pair = (
            None if rows is None else _paired_rows(rows, (std_name, provider), (dw_name, provider))
        )
        if pair is None:
            continue
        std, dw, where = pair
        ratio = std["latency_ms_p50"] / dw["latency_ms_p50"]
        formula = _formula_ratio(std, dw)
        faster.append(ratio > 1.0)
        parts.append(
            (
                f"{dw_name} {_ratio_text(ratio, formula)}",
                f"{where}; {std['latency_ms_p50']:.3f} ms vs {dw['latency_ms_p50']:.3f} ms",
            )
        )
    if not parts:
        wanted = [(n, provider) for pair in pairs for n in pair]
        return _runtime_untested(
            ev, f"a report's results.csv with the models suite ({what})", method, wanted
        )
    measured = "; ".join(m for m, _ in parts)
    return Outcome(measured, method, _verdict(all(faster)), "; ".join(n for _, n in parts))


@runtime_claim(
    "cifar-model-latency",
    "001",
    statement="The depthwise CNN infers faster than the standard CNN.",
    claimed="faster",
)
def _check_model_latency(ev: Evidence, runtime: str) -> Outcome:
    return _model_pair_outcome(ev, runtime, (("cifar_cnn", "cifar_cnn_dw"),), "cifar_cnn pair")


@runtime_claim(
    "lenet-dw-infers-faster",
    "000",
    statement=(
        "Depthwise-separable convolution reduces the computations, making LeNet-5 "
        "significantly faster (here: inference of the depthwise twins)."
    ),
    claimed="faster",
)
def _check_lenet_infers_faster(ev: Evidence, runtime: str) -> Outcome:
    pairs = tuple(
        (spec.pair, name)
        for name in ("lenet5_dw", "lenet5_paper_dw")
        if (spec := registry.get(name)).pair is not None
    )
    return _model_pair_outcome(ev, runtime, pairs, "the LeNet pairs")


@claim(
    "lenet-squash-constants",
    "002",
    statement="The squashing function is A tanh(S x) with A = 1.7159, S = 2/3.",
    claimed="f(1) = 1",
)
def _check_squash(_: Evidence) -> Outcome:
    from models.lenet5 import ScaledTanh

    f1 = float(ScaledTanh()(torch.tensor(1.0, dtype=torch.float64)))
    return Outcome(
        f"f(1) = {f1:.6f}",
        "1.7159 tanh(2/3 x) evaluated in float64",
        _verdict(abs(f1 - 1) < 1e-3),
        "the constants are chosen so that f(+-1) = +-1 (LeCun et al. 1998)",
    )


@claim(
    "lenet-paper-table",
    "002",
    statement=(
        "The paper's layers have 156/122,304, 12/5,880, 1,516/151,600, 32/2,000, "
        "48,120/48,120 and 10,164/10,164 trainable parameters/connections (C1, S2, C3, S4, "
        "C5, F6; LeCun et al. 1998), the RBF output 840 fixed."
    ),
    claimed="paper Table",
)
def _check_paper_table(ev: Evidence) -> Outcome:
    table = {
        "c1": (156, 122_304),
        "s2": (12, 5_880),
        "c3": (1_516, 151_600),
        "s4": (32, 2_000),
        "c5": (48_120, 48_120),
        "f6": (10_164, 10_164),
        "output": (0, 840),
    }
    got = {
        k: (
            int(ev.layer("lenet5_paper", k)["trainable"]),
            int(ev.layer("lenet5_paper", k)["connections"]),
        )
        for k in table
    }
    bad = [k for k in table if got[k] != table[k]]
    return Outcome(
        "; ".join(f"{k} {p:,}/{c:,}" for k, (p, c) in got.items()),
        "trainable parameters / connections per layer of lenet5_paper (sepbench count)",
        _verdict(not bad),
        ("mismatch: " + ", ".join(bad)) if bad else "output: 840 fixed prototype weights",
    )


@claim(
    "lenet-c1-params",
    "003",
    statement="C1 has (5x5x1 + 1) x 6 parameters.",
    claimed="156",
)
def _check_lenet_c1_params(ev: Evidence) -> Outcome:
    return _param_outcome(ev, "lenet5", "c1", 156)


@claim(
    "lenet-c3-formula",
    "003",
    statement="C3's sparse table gives 5x5x3 x 9 + 5x5x4 x 6 + 5x5x6 x 1 + 16 parameters.",
    claimed="1,516",
)
def _check_c3_formula(_: Evidence) -> Outcome:
    from models.lenet5 import C3_TABLE

    as_written = 5 * 5 * 3 * 9 + 5 * 5 * 4 * 6 + 5 * 5 * 6 * 1 + 16
    by_size: dict[int, int] = {}
    for ins in C3_TABLE:
        by_size[len(ins)] = by_size.get(len(ins), 0) + 1
    paper = sum(25 * n * maps for n, maps in by_size.items()) + len(C3_TABLE)
    terms = " + ".join(f"25x{n}x{maps}" for n, maps in sorted(by_size.items()))
    return Outcome(
        f"the expression evaluates to {as_written:,}",
        "the document's arithmetic, evaluated; Table I counted from models.lenet5.C3_TABLE",
        _verdict(as_written == 1516),
        f"the counts of 3- and 4-input maps are swapped: Table I has {terms} + 16 = {paper:,}",
    )


@claim(
    "lenet-c3-params",
    "003",
    statement="C3 with the sparse connection table has 1,516 parameters.",
    claimed="1,516",
)
def _check_lenet_c3_params(ev: Evidence) -> Outcome:
    return _param_outcome(ev, "lenet5_paper", "c3", 1516)


@claim(
    "lenet-c5-params",
    "003",
    statement="C5 has (5x5x16 + 1) x 120 parameters.",
    claimed="48,120",
)
def _check_lenet_c5_params(ev: Evidence) -> Outcome:
    return _param_outcome(ev, "lenet5", "c5", 48120)


@claim(
    "lenet-f6-params",
    "003",
    statement="F6 has (120 + 1) x 84 parameters.",
    claimed="10,164",
)
def _check_lenet_f6_params(ev: Evidence) -> Outcome:
    return _param_outcome(ev, "lenet5", "f6", 10164)


@claim(
    "lenet-f7-params",
    "003",
    statement="The output layer F7 has (84 + 1) x 10 parameters.",
    claimed="850",
)
def _check_lenet_f7_params(ev: Evidence) -> Outcome:
    return _param_outcome(ev, "lenet5", "f7", 850)


@claim(
    "lenet-total-params",
    "003",
    statement="LeNet-5 has about 60,000 parameters.",
    claimed="~60,000",
)
def _check_total_params(ev: Evidence) -> Outcome:
    paper = int(_model_totals(ev, "lenet5_paper")["trainable"])
    modern = int(_model_totals(ev, "lenet5")["trainable"])
    ok = all(abs(v / 60_000 - 1) <= 0.05 for v in (paper, modern))
    return Outcome(
        f"paper {paper:,}; modern (full C3) {modern:,}",
        "trainable parameters of lenet5_paper and lenet5",
        _verdict(ok),
        "'about' read as within 5%. The paper model's 60,000 excludes the 840 fixed RBF "
        "prototype weights; the document's own table sums to 60,806",
    )


@claim(
    "lenet-shapes",
    "003",
    statement="Output sizes 28x28x6, 14x14x6, 10x10x16, 5x5x16, 1x1x120, 84, 10 for a 32x32 input.",
    claimed="the seven sizes",
)
def _check_shapes(ev: Evidence) -> Outcome:
    want = {
        "c1": "6x28x28",
        "s2": "6x14x14",
        "c3": "16x10x10",
        "s4": "16x5x5",
        "c5": "120x1x1",
        "f6": "84",
        "f7": "10",
    }
    got = {k: ev.layer("lenet5", k)["out_shape"].split("x", 1)[1] for k in want}
    bad = [k for k in want if got[k] != want[k]]
    return Outcome(
        ", ".join(f"{k} {v}" for k, v in got.items()),
        "forward pass of lenet5 on a 1x32x32 input",
        _verdict(not bad),
        "mismatch: " + ", ".join(bad) if bad else "",
    )


@claim(
    "lenet-learnable-layers",
    "004",
    statement="LeNet-5 has 5 layers with learnable parameters.",
    claimed="5",
)
def _check_learnable_layers(ev: Evidence) -> Outcome:
    df = ev.counts("lenet5")
    n = int((df[df["layer"] != "total"]["trainable"] > 0).sum())
    paper = ev.counts("lenet5_paper")
    n_paper = int((paper[paper["layer"] != "total"]["trainable"] > 0).sum())
    return Outcome(
        f"{n}",
        "layers of lenet5 with trainable parameters",
        _verdict(n == 5),
        f"the paper's model has {n_paper}: S2 and S4 are trainable there, and its RBF "
        "output's prototypes are fixed",
    )
