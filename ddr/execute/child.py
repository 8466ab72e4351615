"""Running one task in a child process, so that whatever it does to its process cannot end ddr's.

``ddr run --isolate`` distills through :class:`ChildProcess`: the same task the ``ray`` executor
ships to a worker (:func:`ddr.runs.remote_distill.distill_task`) runs in a fresh interpreter
(``multiprocessing``'s *spawn*, never *fork*: torch's threads and CUDA do not survive a fork).
Its reply comes back as pickled bytes over a pipe. When the child ends without one (``os._exit``
from C, ``abort``, a segfault, the kernel's OOM killer), :meth:`ChildPending.result` raises a
:class:`~ddr.errors.DdrError` saying how it ended (exit status or signal); it is never taken as
success.

Only ddr's own child writes to the pipe, so unpickling its bytes runs no foreign code.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from ddr.errors import DdrError, rebuilt_error

_POLL_SECONDS = 0.5
"""How often :meth:`ChildPending.wait` yields while the child runs (a progress bar's tick)."""


def _child_main(function: Callable[[Any], Any], argument: Any, conn: Any) -> None:
    """The child: run ``function(argument)`` and send back ``("ok", reply)`` or ``("error", text)``."""
    try:
        reply: tuple[str, Any] = ("ok", function(argument))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent, which reports it
        reply = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    try:
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        conn.close()


def how_it_ended(exitcode: int | None) -> str:
    """A child's exit code in words: ``exit status 3``, ``signal 9 (SIGKILL)``."""
    if exitcode is None:
        return "no exit status (still running)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown"
        return f"signal {-exitcode} ({name})"
    return f"exit status {exitcode}"


class ChildPending:
    """A task running in a child process (:meth:`ChildProcess.submit`)."""

    def __init__(self, process: Any, conn: Any, what: str) -> None:
        self.process, self.conn, self.what = process, conn, what
        self._reply: tuple[str, Any] | None = None

    def _receive(self) -> bool:
        """Read the reply when it is there; True once it has been read."""
        if self._reply is None and self.conn.poll():
            try:
                self._reply = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):  # the child closed the pipe without a reply: it ended
                return False
        return self._reply is not None

    def wait(self) -> Iterator[None]:
        """Yield every ``_POLL_SECONDS`` until the child has replied or ended."""
        from multiprocessing.connection import wait

        while not self._receive() and self.process.is_alive():
            wait([self.conn, self.process.sentinel], timeout=_POLL_SECONDS)
            yield None

    def result(self) -> Any:
        """The task's return value. Raises DdrError when the child ended without one."""
        for _ in self.wait():
            pass
        if not self._receive():
            self.process.join(timeout=5)
            raise DdrError(f"{self.what} ended its process ({how_it_ended(self.process.exitcode)}) without a "
                           "result: something in it (the method's own code or a library it calls) exited, "
                           "aborted or crashed; nothing was stored. See where with `python -X faulthandler -m "
                           "ddr ...`, or report it to the plugin's authors")
        self.process.join(timeout=30)
        status, value = self._reply  # type: ignore[misc]
        if status == "error":  # ddr's own task code failed outside the method (the method's errors are replies)
            raise DdrError(f"{self.what} failed in its child process: {value}")
        if isinstance(value, dict) and "error" in value:  # a DdrError the task returned, as the ray executor's
            raise rebuilt_error(value["error"]) from None
        return value

    def cancel(self) -> None:
        """Stop the child if it still runs."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=10)
        self.conn.close()


class ChildProcess:
    """Runs tasks in child processes: ``submit(function, argument, what=...)`` as the ``ray``
    executor's (``function`` must be importable by the child: a module-level function)."""

    name = "child-process"

    def submit(self, function: Callable[[Any], Any], argument: Any, *, what: str, device: str = "cpu") -> ChildPending:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        # not a daemon: a method may start processes of its own (DataLoader workers)
        process = context.Process(target=_child_main, args=(function, argument, send), name=f"ddr: {what}")
        process.start()
        send.close()  # the parent keeps only the reading end: EOF once the child is gone
        return ChildPending(process, receive, what)
