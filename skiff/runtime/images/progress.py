"""Progress of layer transfers (save, load, pull, push).

On a terminal: one Rich progress bar per layer. Otherwise: one plain line per
layer when it is done. Rich is imported only when a bar is actually shown.

Usage::

    with Progress(sys.stderr) as p:
        t = p.task("3f2a1b9c0d4e", "Loading layer", total=size)
        t.advance(n)            # as bytes move
        t.done()                # prints the plain line (non-terminal)
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def human_size(n: float) -> str:
    """Docker's units: 1000-based, three significant digits (``12.3MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000.0
    return f"{n}B"  # pragma: no cover


class Task:
    """One layer's progress."""

    def __init__(self, owner: "Progress", key: str, label: str, total: int | None):
        self.owner, self.key, self.label, self.total = owner, key, label, total
        self.completed = 0
        self._id = None
        self._finished = False

    def advance(self, n: int) -> None:
        self.completed += n
        if self._id is not None:
            self.owner._rich.update(self._id, advance=n)

    def done(self, message: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._id is not None:
            self.owner._rich.update(self._id, completed=self.total or self.completed,
                                    total=self.total or self.completed)
        elif not self.owner.quiet:
            line = message or f"{self.key}: {self.label} {human_size(self.total or self.completed)}"
            self.owner.stream.write(line + "\n")
            self.owner.stream.flush()


class Progress:
    """Bars on a terminal, plain lines otherwise, nothing when quiet."""

    def __init__(self, stream: "IO[str] | None" = None, quiet: bool = False,
                 bars: bool | None = None, plain: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet or not plain
        if bars is None:
            try:
                bars = self.stream.isatty()
            except (AttributeError, ValueError):
                bars = False
        self.bars = bool(bars) and not quiet
        self._rich = None

    def __enter__(self) -> "Progress":
        if self.bars:
            try:
                from rich.console import Console
                from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                                           TextColumn, TransferSpeedColumn)
            except ImportError:  # rich missing: fall back to plain lines
                self.bars = False
                return self
            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), console=Console(file=self.stream), transient=False)
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def task(self, key: str, label: str, total: int | None = None) -> Task:
        t = Task(self, key, label, total)
        if self._rich is not None:
            t._id = self._rich.add_task(f"{key}: {label}", total=total)
        return t


class CountingReader:
    """A binary file wrapper that reports bytes read to a Task."""

    def __init__(self, f, task: Task | None):
        self._f, self._task = f, task
        self.name = getattr(f, "name", "archive")

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self._task is not None and data:
            self._task.advance(len(data))
        return data

    def close(self) -> None:  # the owner closes the real file
        return None
