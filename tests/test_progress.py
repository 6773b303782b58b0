"""Progress output: a bar on a terminal, whole lines (no carriage returns) on a file or pipe."""

from __future__ import annotations

import io

from tqdm.auto import tqdm

from bench.progress import LineProgress, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar() -> None:
    bar = progress(total=3, file=_Terminal())
    assert isinstance(bar, tqdm)
    bar.close()


def test_a_file_gets_whole_lines_at_most_one_per_interval() -> None:
    out = io.StringIO()
    bar = progress(total=157, desc="rows", unit="row", file=out)
    assert isinstance(bar, LineProgress)
    for _ in range(100):
        bar.update()
    bar.set_description("dwsep_128_256 eager_nchw")
    bar.set_postfix_str("resnet18 @ 224")
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    assert text.splitlines() == [text.splitlines()[-1]]  # quiet for a minute, then the last state
    assert text.startswith("dwsep_128_256 eager_nchw: 100/157 (64%)")
    assert text.rstrip().endswith("resnet18 @ 224]")


def test_lines_follow_the_interval_and_iteration_closes() -> None:
    out = io.StringIO()
    seen = list(LineProgress(range(4), desc="epoch 1/2", unit="batch", every_s=0.0, file=out))
    assert seen == [0, 1, 2, 3]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2: 1/4") and lines[-1].startswith("epoch 1/2: 4/4 (100%)")
    assert len(lines) == 5  # one per step at interval 0, and the closing line


def test_nothing_done_prints_nothing() -> None:
    out = io.StringIO()
    progress(total=0, file=out).close()
    assert out.getvalue() == ""
