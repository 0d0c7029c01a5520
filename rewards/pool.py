"""A persistent pool of verifier worker processes with a hard per-item timeout.

Signals cannot interrupt sympy off the main thread (math-verify issues #50, #55, #65), so the only
reliable timeout is a process that can be killed. Workers are fresh interpreters (like the ``spawn``
context, never ``fork``), so the pool is safe inside a process that already runs torch and a vLLM
engine, and callers need no ``if __name__ == "__main__"`` guard.
Items go to workers in chunks and results come back in small batches to amortise pipe latency; each
batch received resets that worker's clock, so the timeout is per item. A worker past its deadline is
killed, its item gets a ``timeout`` verdict, the rest of its chunk is re-queued and a fresh worker
replaces it. Each worker caches parsed golds and answers; workers warm sympy up before reporting ready.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path

from rewards.verdict import Options, Verdict

CHUNK = 16
"""Items sent to a worker at once: large enough to hide pipe latency, small enough to balance."""


FLUSH_S = 0.005
"""A worker holds finished verdicts at most this long before sending them (one message per batch).

One message per item cost ~100 us of pipe and wake-up time, as much as a cheap verdict itself. The
per-item clock resets only when results arrive, so buffering can shorten an item's time budget by at
most this much, never lengthen it: the 2x-timeout bound is unchanged.
"""

WARMUP = (("$x < 1$", "-x > -1"), (r"$1\leq|z|\leq 2$", r"1 \le |z| \le 2"), (r"(1,2]\cup(3,4)", r"(1,2]\cup(3,4)"),
          (r"\sin^2 x+\cos^2 x", "1"), (r"\pi", "3.14159"), ("x^2-1=0", "x^2-4=0"), (r"\{1, 2\}", "2, 1"),
          (r"\begin{pmatrix}1\\2\end{pmatrix}", "(1,2)"), (r"50\%", "0.5"), ("1/3", "0.333"))
"""Answers that pull in sympy's lazily imported modules (inequality solving imports sympy.physics,
~0.2 s) and fill its caches, so the first real batch does not pay for them inside the timeout."""


def _warm_up(verify) -> None:
    """Run the warm-up answers once; any failure here is harmless (the real items will report it)."""
    options = Options()
    for gold, answer in WARMUP:
        try:
            verify(gold, [answer], options)
        except Exception:  # noqa: BLE001 - warm-up only
            pass


def _worker_main(conn: Connection) -> None:
    """Worker loop: receive ``(options, [(index, gold, answers), ...])``, send lists of ``(index, verdict)``."""
    from rewards import core

    _warm_up(core.verify_extracted)
    conn.send(("ready", None))  # imports done: the parent starts the per-item clock now
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        options, items = message
        _answer_chunk(conn, core.verify_extracted, options, items)


def _answer_chunk(conn: Connection, verify, options: Options, items: list) -> None:
    """Verify a chunk, sending results in batches at most ``FLUSH_S`` old (and all at the end)."""
    done: list = []
    last_send = time.monotonic()
    for index, gold, answer in items:
        done.append((index, verify(gold, answer, options)))
        now = time.monotonic()
        if now - last_send >= FLUSH_S:
            conn.send(done)
            done, last_send = [], now
    if done:
        conn.send(done)


class _Worker:
    """One worker process (``python -m rewards.worker FD``), its socket, and the items it holds.

    A fresh interpreter rather than ``multiprocessing``: no fork of a torch/vLLM parent, and no
    re-import of the caller's ``__main__`` (which ``spawn`` does, breaking unguarded scripts).
    """

    def __init__(self, module: str = "rewards.worker") -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, str(child.fileno())], pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL, env=env, close_fds=True)
        child.close()
        self.conn = Connection(parent.detach())
        self.pending: deque = deque()  # items sent and not answered, in order
        self.deadline = 0.0

    def send(self, options: Options, items: list, timeout: float, startup: float) -> None:
        self.pending.extend(items)
        self.deadline = time.monotonic() + timeout + startup
        self.conn.send((options, items))

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self.conn.close()


class VerifierPool:
    """Worker processes that outlive a call to ``verify_batch``; created lazily, reused, replaced."""

    def __init__(self, workers: int, module: str = "rewards.worker") -> None:
        self.module = module  # the worker entry point; tests swap in one that can hang
        self.size = workers
        self.workers: list[_Worker] = []
        self.fresh: set[int] = set()  # ids of workers that have not answered yet (still importing)
        self.lock = threading.Lock()

    def _spawn(self) -> _Worker:
        worker = _Worker(self.module)
        self.fresh.add(id(worker))
        return worker

    def resize(self, workers: int) -> None:
        while len(self.workers) < workers:
            self.workers.append(self._spawn())
        while len(self.workers) > workers:
            self._retire(self.workers.pop())
        self.size = workers

    def warm(self, timeout: float = 60.0) -> None:
        """Start the workers and wait until each has imported sympy and warmed up (the trainer and the
        benchmark call this up front, so no batch pays for interpreter start-up)."""
        with self.lock:
            self.resize(self.size)
            deadline = time.monotonic() + timeout
            while self.fresh and time.monotonic() < deadline:
                waiting = {w.conn: w for w in self.workers if id(w) in self.fresh}
                for conn in wait(list(waiting), timeout=max(0.0, deadline - time.monotonic())):
                    self._receive(waiting[conn], {}, 0.0, deque())
                self._replace_dead()

    def _replace_dead(self) -> None:
        """A worker that died while idle (OOM killer, a crash in warm-up) is replaced before use."""
        for slot, worker in enumerate(self.workers):
            if not worker.pending and not worker.alive():
                self._retire(worker, kill=True)
                self.workers[slot] = self._spawn()

    def run(self, items: list[tuple[int, str, str]], options: Options, timeout: float) -> dict[int, Verdict]:
        """Verify ``(index, gold, extracted answer)`` items; every index gets a verdict, timeouts included."""
        with self.lock:
            self.resize(self.size)
            self._replace_dead()
            return self._run(deque(items), options, timeout)

    def _run(self, queue: deque, options: Options, timeout: float) -> dict[int, Verdict]:
        results: dict[int, Verdict] = {}
        chunk = max(1, min(CHUNK, len(queue) // (2 * len(self.workers)) or 1))
        while queue or any(w.pending for w in self.workers):
            for worker in self._takers():
                if not worker.pending and queue:
                    items = [queue.popleft() for _ in range(min(chunk, len(queue)))]
                    startup = 30.0 if id(worker) in self.fresh else 0.0
                    worker.send(options, items, timeout, startup)
            busy = {w.conn: w for w in self.workers if w.pending or id(w) in self.fresh}
            next_deadline = min((w.deadline for w in busy.values() if w.pending), default=time.monotonic() + timeout)
            for conn in wait(list(busy), timeout=max(0.0, next_deadline - time.monotonic())):
                self._receive(busy[conn], results, timeout, queue)
            self._reap(results, queue)
        return results

    def _takers(self) -> list[_Worker]:
        """Workers that may take items now: the ready ones, or all when none is ready yet.

        A worker replaced after a timeout needs seconds to import sympy; items sent to it would wait
        for that start, so a batch right after a kill could take far longer than twice the timeout
        (found by the fuzz run). It joins in as soon as it reports ready.
        """
        ready = [worker for worker in self.workers if id(worker) not in self.fresh]
        return ready or self.workers

    def _receive(self, worker: _Worker, results: dict, timeout: float, queue: deque) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                worker.deadline = time.monotonic() + timeout
                self.fresh.discard(id(worker))
                if isinstance(message, tuple):  # ("ready", None)
                    continue
                for index, verdict in message:
                    results[index] = verdict
                    worker.pending.popleft()
        except (EOFError, OSError):
            worker.deadline = 0.0  # died: reap it now

    def _reap(self, results: dict, queue: deque) -> None:
        """Kill workers past their deadline; their current item times out, the rest is re-queued."""
        now = time.monotonic()
        for slot, worker in enumerate(self.workers):
            if worker.pending and (now >= worker.deadline or not worker.alive()):
                index, gold, pred = worker.pending.popleft()
                results[index] = Verdict(False, "timeout", None)
                queue.extendleft(reversed(worker.pending))
                worker.pending.clear()
                self._retire(worker, kill=True)
                self.workers[slot] = self._spawn()

    def _retire(self, worker: _Worker, kill: bool = False) -> None:
        self.fresh.discard(id(worker))
        if not kill:
            try:
                worker.conn.send(None)
                worker.process.wait(timeout=0.5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        worker.kill()

    def close(self) -> None:
        with self.lock:
            for worker in self.workers:
                self._retire(worker)
            self.workers = []


_POOL: VerifierPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(workers: int) -> VerifierPool:
    """The module-level pool, created on first use and resized to ``workers``."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = VerifierPool(workers)
        _POOL.size = max(1, workers)
        return _POOL


def shutdown_pool() -> None:
    """Stop the worker processes (also run at interpreter exit); the next call starts new ones."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None


atexit.register(shutdown_pool)
