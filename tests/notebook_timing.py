"""A pytest plugin that reports how long each notebook ran under nbval.

nbval makes one test item per cell; this plugin adds up the time of every phase of every item
(the kernel's start is in the first cell's set-up) per notebook, prints the table at the end of
the run, slowest first, and writes it to ``--notebook-times=FILE`` so that ``make test`` can
print it again as its last words. Load it with ``-p tests.notebook_timing``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

__all__ = ["format_table", "pytest_addoption", "pytest_configure"]


def format_table(seconds: dict[str, float], outcomes: dict[str, str]) -> str:
    """The notebooks, slowest first, with their time in seconds and whether they passed."""
    lines = ["Notebook execution times under nbval (seconds, slowest first):"]
    width = max(map(len, seconds), default=0)
    for name, total in sorted(seconds.items(), key=lambda item: -item[1]):
        lines.append(f"  {name:<{width}}  {total:7.1f}  {outcomes[name]}")
    lines.append(f"  {'total':<{width}}  {sum(seconds.values()):7.1f}")
    return "\n".join(lines)


class _NotebookTimes:
    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.seconds: dict[str, float] = defaultdict(float)
        self.outcomes: dict[str, str] = defaultdict(lambda: "passed")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        notebook = report.nodeid.split("::", 1)[0]
        if not notebook.endswith(".ipynb"):
            return
        self.seconds[notebook] += report.duration
        if report.failed:
            self.outcomes[notebook] = "FAILED"

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        if not self.seconds:
            return
        table = format_table(self.seconds, self.outcomes)
        terminalreporter.write_sep("=", "notebook execution times")
        terminalreporter.write_line(table)
        if self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text(table + "\n", encoding="utf-8")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--notebook-times",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the per-notebook execution times to FILE",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(
        _NotebookTimes(config.getoption("--notebook-times")), "notebook-times"
    )
