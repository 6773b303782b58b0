"""Every quantitative claim of the five documents with a verdict computed from numbers.

The claims are declared with ``@claim`` on the checks that judge them: cost and count claims in
bench.checking.document_claims, training claims in bench.checking.training_claims. Verdicts:
``holds``, ``refuted``, or ``untested`` (the note names what would test it).
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

# Imported for their declarations, in the order the table lists them.
from bench.checking import document_claims, training_claims
from bench.checking.evidence import CLAIMS, Evidence, Outcome

COLUMNS = ["claim_id", "document", "statement", "claimed", "measured", "method", "verdict", "note"]

DOCS = {
    "000": "LeNet-5 with Depthwise Convolution for MNIST",
    "001": "CNN vs Depthwise Separable Convolution",
    "002": "LeNet-5: PyTorch Implementation (paper-faithful)",
    "003": "LeNet-5 overview",
    "004": "Minimal PyTorch implementation of LeNet5",
    "1998": "LeCun, Bottou, Bengio, Haffner 1998 (reference figure)",
}
EXAMPLE_WORKLOAD = document_claims.EXAMPLE_WORKLOAD
# The speed claims judged once per runtime: claim_id for PyTorch eager, claim_id@<runtime> else.
RUNTIME_CLAIMS = tuple(dict.fromkeys(c.claim_id.split("@")[0] for c in CLAIMS if "@" in c.claim_id))
# The claims whose verdicts come from training runs (comparison.md lists these).
TRAINING_CLAIMS = tuple(c.claim_id for c in CLAIMS if c.module == training_claims.__name__)


def evaluate_claims(
    results: pd.DataFrame | None = None,
    training: pd.DataFrame | None = None,
    training_epochs: pd.DataFrame | None = None,
    claim_ids: Collection[str] | None = None,
) -> pd.DataFrame:
    """Run every claim's check (or those in ``claim_ids``); a check that raises becomes an
    'untested' row saying why."""
    ev = Evidence(results=results, training=training, training_epochs=training_epochs)
    rows = []
    for c in CLAIMS:
        if claim_ids is not None and c.claim_id not in claim_ids:
            continue
        try:
            out = c.check(ev)
        except Exception as err:  # one broken check must not hide the other verdicts
            out = Outcome("error", "check failed", "untested", f"{type(err).__name__}: {err}")
        rows.append(
            {
                "claim_id": c.claim_id,
                "document": f"{c.document} {DOCS[c.document]}",
                "statement": c.statement,
                "claimed": c.claimed,
                "measured": out.measured,
                "method": out.method,
                "verdict": out.verdict,
                "note": out.note,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def runtime_verdicts(claims: pd.DataFrame) -> pd.DataFrame:
    """The speed claims, one row each, one column per runtime: "verdict: measured"."""
    from bench.measuring.operators.peers import RUNTIMES

    by_id = claims.set_index("claim_id")
    rows = []
    for cid in RUNTIME_CLAIMS:
        row = {"claim": cid, "claimed": by_id.loc[cid, "claimed"] if cid in by_id.index else ""}
        for runtime in RUNTIMES:
            key = cid if runtime == "pytorch" else f"{cid}@{runtime}"
            if key in by_id.index:
                r = by_id.loc[key]
                row[runtime] = r["verdict"] + (
                    f": {r['measured']}" if r["verdict"] != "untested" else ""
                )
        rows.append(row)
    return pd.DataFrame(rows)
