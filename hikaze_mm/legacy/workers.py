"""A small pool of worker processes for CPU-bound jobs (image encoding), safe to embed.

Why not ``ProcessPoolExecutor``: with ``fork`` it forks a threaded server (locks held by
other threads are inherited), and with ``spawn``/``forkserver`` every worker re-runs the
parent's main script as ``__mp_main__``, which inside ComfyUI means importing its whole
stack (torch...) once per worker, and fails outright when the parent runs from stdin.
Here each worker is a fresh ``python -m hikaze_mm.legacy.workers`` that imports
only what its jobs need; jobs and results travel pickled over its stdin/stdout.

``ProcessWorkers(n)`` is a ``concurrent.futures.Executor``: ``submit(fn, *args)`` with a
module-level ``fn``. One parent thread drives each worker; a worker that dies (killed for
memory, a crash in a decoder) fails only its current job with ``BrokenExecutor`` and is
restarted for the next one. Workers exit when their stdin closes, so they never outlive
the parent, even one killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future
from pathlib import Path
from typing import Any

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class ProcessWorkers(Executor):
    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._threads = [
            threading.Thread(target=self._serve, name=f"hikaze-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a closed worker pool")
            future: Future[Any] = Future()
            self._jobs.put((future, fn, args, kwargs))
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    # ------------------------------------------------------------------ parent side
    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "hikaze_mm.legacy.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        with self._lock:
            self._procs.add(proc)
        return proc

    def _stop(self, proc: subprocess.Popen[bytes] | None, *, kill: bool) -> None:
        if proc is None:
            return
        try:
            if kill:
                proc.kill()
            elif proc.stdin:
                proc.stdin.close()  # the worker exits at end of input
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()
        with self._lock:
            self._procs.discard(proc)

    def _serve(self) -> None:
        proc: subprocess.Popen[bytes] | None = None
        try:
            while (item := self._jobs.get()) is not None:
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if proc is None:
                        proc = self._spawn()
                    assert proc.stdin is not None and proc.stdout is not None
                    pickle.dump((fn, args, kwargs), proc.stdin, pickle.HIGHEST_PROTOCOL)
                    proc.stdin.flush()
                    ok, value = pickle.load(proc.stdout)
                except (EOFError, OSError, pickle.UnpicklingError) as exc:
                    self._stop(proc, kill=True)
                    proc = None
                    future.set_exception(BrokenExecutor(f"a worker process died ({exc!r})"))
                    continue
                except BaseException as exc:  # e.g. a job that cannot be pickled
                    # The stream may hold half a message: start the next job afresh.
                    self._stop(proc, kill=True)
                    proc = None
                    future.set_exception(exc)
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            self._stop(proc, kill=False)


# ---------------------------------------------------------------------- worker side
def _worker_main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the result stream
    while True:
        try:
            fn, args, kwargs = pickle.load(stdin)
        except EOFError:
            return
        try:
            result: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except Exception as exc:
            result = (False, exc)
        try:
            data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps((False, RuntimeError(f"unpicklable result: {exc!r}")))
        stdout.write(data)
        stdout.flush()


if __name__ == "__main__":
    _worker_main()
