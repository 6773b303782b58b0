"""Progress of long loops: a tqdm bar on a terminal; on a file or a pipe, where a bar's carriage
returns pile up into one endless line (30 KB for one report), a plain line a minute and one at
the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm

LINE_EVERY_S = 60.0
_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed} elapsed{postfix}]"


class LineProgress:
    """The part of tqdm's interface the loops use (iterate, update, set_description,
    set_postfix, set_postfix_str, close), written as whole lines: at most one per ``every_s``
    seconds, and the last state when closed."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        every_s: float = LINE_EVERY_S,
        file: TextIO | None = None,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every_s, self.file = every_s, file or sys.stderr
        self.n, self.postfix, self.closed = 0, "", False
        self.start = self.last = time.monotonic()

    def __len__(self) -> int:
        return self.total or 0

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every_s:
            self._line()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        if not self.closed and self.n:
            self._line()
        self.closed = True

    def _line(self) -> None:
        now = time.monotonic()
        self.last = now
        text = tqdm.format_meter(
            self.n,
            self.total,
            now - self.start,
            prefix=self.desc,
            unit=self.unit,
            postfix=self.postfix,
            bar_format=_FORMAT if self.total else None,
        )
        print(text, file=self.file, flush=True)


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    leave: bool = True,
    file: TextIO | None = None,
) -> Any:
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a LineProgress."""
    stream = file or sys.stderr
    if disable or stream.isatty():
        return auto_tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            disable=disable,
            leave=leave,
            file=stream,
            dynamic_ncols=True,
        )
    return LineProgress(iterable, total=total, desc=desc, unit=unit, file=stream)
