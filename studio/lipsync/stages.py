"""Run a chain of streaming stages, each in its own thread, joined by bounded queues.

A stage is a function that takes an iterator of items and yields items (the first takes nothing: it is the
source). Run one after another in one thread (``sequential=True``) the chain is plain generator composition; run
overlapped, every stage works at once on different items (numpy, OpenCV, torch, mediapipe and the ffmpeg pipes
release the GIL), so the job goes at the speed of its slowest stage instead of the sum of all. Either way the
items and their order are the same, so the output is identical.

Memory stays bounded: each queue holds at most ``maxsize`` items. The first error in any stage (or in the
consumer: a progress callback raising, a cancel, Ctrl-C) stops every stage; each stage's generator is closed in
its own thread, so its ``finally`` blocks (closing a tracker, killing an ffmpeg child) run, and every thread has
ended before :func:`run_chain` returns or raises.

Each stage's busy time (the time inside its own code, not waiting for its neighbours) is added to ``seconds``
under its name, in both modes, so the per-stage figures mean the same thing.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

_END = object()  # the end of a stream
POLL_S = 0.05  # how often a waiting thread looks at the stop flag


@dataclass(frozen=True)
class Stage:
    name: str  # the key its busy time is added to (a stage may also time parts of itself under other keys)
    run: Callable[..., Iterable]  # source: run() -> items; others: run(items) -> items
    maxsize: int = 4  # how many of its output items may wait for the next stage
    timed: bool = True  # False: the stage adds its own parts' times (e.g. blend and encode in one worker)


class StageTimes:
    """Seconds per stage; stages running in different threads add to different keys."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def timed(self, key: str):
        return _Timed(self, key)


class _Timed:
    def __init__(self, times: StageTimes, key: str):
        self.times, self.key = times, key

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.times.add(self.key, time.perf_counter() - self.t0)
        return False


class _Stopped(Exception):
    """Raised inside a stage thread when the chain is being stopped (never leaves this module)."""


class _Upstream:
    """The iterator a stage reads: counts the time spent getting each item (the neighbour's time or a queue
    wait), which is not the stage's own."""

    def __init__(self, get: Callable[[], object]):
        self._get = get
        self.waited = 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        try:
            item = self._get()
        finally:
            self.waited += time.perf_counter() - t0
        if item is _END:
            raise StopIteration
        return item


def _busy_iter(stage: Stage, upstream: Optional[_Upstream], times: StageTimes):
    """Iterate over a stage's output, adding its busy time (time in its generator minus the time spent pulling
    from upstream) under its name; stages with ``timed=False`` time their parts themselves."""
    gen = iter(stage.run() if upstream is None else stage.run(upstream))
    try:
        while True:
            t0, w0 = time.perf_counter(), upstream.waited if upstream else 0.0
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                if stage.timed:
                    waited = (upstream.waited if upstream else 0.0) - w0
                    times.add(stage.name, max(0.0, time.perf_counter() - t0 - waited))
            yield item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


def run_chain(stages: list[Stage], times: StageTimes, *, sequential: bool = False,
              should_stop: Callable[[], bool] = lambda: False, on_item: Callable[[object], None] = lambda item: None,
              idle: Callable[[], None] = lambda: None) -> None:
    """Run ``stages`` (a source, then transforms) and call ``on_item`` on each item of the last one, in the
    calling thread. ``idle`` is called in the calling thread between items and while it waits (e.g. to check
    for a cancel); ``should_stop`` is polled by the stage threads. Re-raises the first error of any stage."""
    if sequential:
        gens = []
        upstream: Optional[_Upstream] = None
        for stage in stages:
            gens.append(_busy_iter(stage, upstream, times))
            upstream = _Upstream(_next_or_end(gens[-1]))
        try:
            for item in upstream:
                idle()
                on_item(item)
        finally:
            for gen in reversed(gens):  # last stage first, as the threads would stop
                gen.close()
        return
    _Threaded(stages, times, should_stop).run(on_item, idle)


def _next_or_end(gen):
    def get():
        return next(gen, _END)

    return get


class _Threaded:
    def __init__(self, stages: list[Stage], times: StageTimes, should_stop):
        self.stages, self.times, self.should_stop = stages, times, should_stop
        self.queues = [queue.Queue(maxsize=max(1, s.maxsize)) for s in stages]
        self.stop = threading.Event()
        self.error: Optional[BaseException] = None
        self._error_lock = threading.Lock()

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.should_stop()

    def _fail(self, error: BaseException) -> None:
        with self._error_lock:
            if self.error is None:
                self.error = error
        self.stop.set()

    def _put(self, q: queue.Queue, item) -> None:
        while True:
            if self._stopping():
                raise _Stopped
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _getter(self, q: queue.Queue):
        def get():
            while True:
                if self._stopping():
                    raise _Stopped
                try:
                    return q.get(timeout=POLL_S)
                except queue.Empty:
                    continue

        return get

    def _work(self, index: int) -> None:
        stage = self.stages[index]
        upstream = None if index == 0 else _Upstream(self._getter(self.queues[index - 1]))
        try:
            gen = _busy_iter(stage, upstream, self.times)
            try:
                for item in gen:
                    self._put(self.queues[index], item)
            finally:
                gen.close()
            self._put(self.queues[index], _END)
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            self._fail(e)

    def run(self, on_item, idle) -> None:
        threads = [threading.Thread(target=self._work, args=(i,), name=f"studio-{s.name}", daemon=True)
                   for i, s in enumerate(self.stages)]
        for t in threads:
            t.start()
        last = self.queues[-1]
        try:
            while True:
                if self.stop.is_set():
                    break
                idle()
                try:
                    item = last.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                on_item(item)
        except BaseException as e:
            self._fail(e)
            raise
        finally:
            self.stop.set()
            for t in threads:
                t.join()
        if self.error is not None:
            raise self.error
