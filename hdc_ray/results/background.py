"""A results writer's flushes on one background thread, so the Tune driver never waits for Arrow or the disk.

The driver's event loop is single-threaded: while it converts rows, writes Parquet and waits for fsync, no
trial result is processed. :class:`BackgroundFlusher` takes the pending rows on the caller's thread (a dict
swap) and writes them on one worker thread, in submission order. :meth:`BackgroundFlusher.wait` is the
barrier: after it, everything submitted is on disk (the callback calls it before Tune saves its experiment
state, so a trial Tune has recorded as finished always has its final row written). A write that failed puts
its rows back and raises on the caller's thread at the next call, so no row is silently dropped.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from hdc_ray.results.writer import Pending, ResultsWriter


class _Skipped(Exception):
    """A write not attempted because an earlier one failed (rows stay in order: none may overtake)."""


class BackgroundFlusher:
    def __init__(self, writer: ResultsWriter) -> None:
        self.writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hdc-ray-results")
        self._inflight: list[tuple[Future[None], Pending]] = []  # submitted, not yet checked, oldest first
        self._broken = threading.Event()  # set by a failed write: the queued ones behind it are skipped
        self.busy_s = self.cpu_s = 0.0  # the writer thread's time in writes: wall (disk waits included) and CPU

    def submit(self) -> None:
        """Start writing the rows put so far; returns at once (raises if an earlier write failed)."""
        self._check(block=False)
        taken = self.writer.take_pending()
        if taken:
            self._inflight.append((self._pool.submit(self._write, taken), taken))

    def wait(self) -> None:
        """Return when every submitted write is on disk; raises the first write error, its rows put back."""
        self._check(block=True)

    def close(self) -> None:
        self.wait()
        self._pool.shutdown(wait=True)

    def _write(self, taken: Pending) -> None:
        if self._broken.is_set():
            raise _Skipped
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            self.writer.write_pending(taken)
        except BaseException:
            self._broken.set()
            raise
        finally:
            self.busy_s += time.perf_counter() - start
            self.cpu_s += time.thread_time() - cpu

    def _check(self, *, block: bool) -> None:
        if not block and not self._broken.is_set():
            self._inflight = [item for item in self._inflight if not item[0].done() or item[0].exception() is not None]
            return
        outcomes = [(future.exception(), taken) for future, taken in self._inflight]  # waits for each
        self._inflight = []
        unwritten = [(error, taken) for error, taken in outcomes if error is not None]
        if not unwritten:
            return
        for _, taken in reversed(unwritten):  # newest first under the pending rows: an older row never wins a key
            self.writer.return_pending(taken)
        self._broken.clear()
        raise next(error for error, _ in unwritten if not isinstance(error, _Skipped))
