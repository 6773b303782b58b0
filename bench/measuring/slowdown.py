"""A test-only slowdown, so `sepbench compare` can be checked on a real rerun in which one
provider got slower: ``SEPBENCH_TEST_SLOWDOWN=eager_nchw:1.3`` makes every call of that
provider's function take 1.3x its own time (comma-separated for several providers). Unset, it
changes nothing. The slowed rows' note says so, and no reference run may be made with it.

The extra time is spent spinning on perf_counter, not sleeping: a blocked_autorange block calls a
10 us function thousands of times, and time.sleep(3e-6) sleeps about 60 us on Linux.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable

from bench.errors import UserError

ENV = "SEPBENCH_TEST_SLOWDOWN"


def factors(text: str | None = None) -> dict[str, float]:
    """{provider: factor} from ``text`` (default: the environment variable); a malformed value
    is a UserError saying what is accepted."""
    text = os.environ.get(ENV, "") if text is None else text
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition(":")
        try:
            factor = float(value)
        except ValueError:
            factor = math.nan
        if not name or not math.isfinite(factor) or factor < 1:
            raise UserError(
                f"{ENV}={text!r}: expected PROVIDER:FACTOR[,PROVIDER:FACTOR...] with a factor "
                "of at least 1, e.g. eager_nchw:1.3"
            )
        out[name] = factor
    return out


def slowed(fn: Callable[[], object], factor: float) -> Callable[[], object]:
    """``fn`` taking ``factor`` times as long per call (the excess spun away)."""
    clock = time.perf_counter

    def slow() -> object:
        start = clock()
        out = fn()
        until = start + (clock() - start) * factor
        while clock() < until:
            pass
        return out

    return slow


def applied(provider: str, prepared, times: str = ""):
    """``prepared`` with its function slowed when the environment asks for ``provider``;
    unchanged otherwise. ``times`` is the provider's own description (the row's default note)."""
    factor = factors().get(provider)
    if factor is None or factor == 1:
        return prepared
    note = f"{prepared.note or times} [test slowdown x{factor:g} injected by {ENV}]"
    return dataclasses.replace(prepared, fn=slowed(prepared.fn, factor), note=note)
