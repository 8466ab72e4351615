"""What plugin code may do to end ddr, and how ddr tells that from the user ending it.

Plugin code runs inside ddr's process: at import (entry points, ``-p`` modules, spec targets)
and in ``distill()``. Three ways it could end ddr, each of which used to look like success or
like the user's Ctrl-C:

* ``sys.exit(...)`` raises ``SystemExit``: at import it made every command, ``ddr doctor``
  included, exit with no message. :func:`is_plugin_fault` counts it as the plugin's failure;
* ``os._exit(...)`` ends the process at once (no ``finally``, no record, exit status of the
  plugin's choosing): :func:`no_process_exit` replaces it, while plugin code runs, with a
  function raising :class:`PluginExit`;
* ``raise KeyboardInterrupt`` looks like Ctrl-C. The CLI installs :func:`on_sigint`, which raises
  :class:`ddr.errors.Interrupted` (a ``KeyboardInterrupt``), so a bare ``KeyboardInterrupt``
  while it is installed came from code, not from the keyboard (:func:`is_users_interrupt`).
  Without the CLI's handler (ddr used as a library) every ``KeyboardInterrupt`` is the user's.

A process ended from C (``abort``, a segfault, ``exit`` in an extension) is out of reach here;
``ddr run --isolate`` runs the distillation in a child process to catch those too.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from ddr.errors import Interrupted, Terminated


class PluginExit(BaseException):
    """Plugin code called ``os._exit(status)`` while :func:`no_process_exit` was active. A
    ``BaseException``, so the plugin's own ``except Exception`` cannot swallow it."""

    def __init__(self, status: Any) -> None:
        super().__init__(f"os._exit({status!r})")
        self.status = status


def on_sigint(signum: int, frame: Any) -> NoReturn:
    """The CLI's SIGINT handler: the user pressed Ctrl-C."""
    raise Interrupted()


def is_users_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` (a ``KeyboardInterrupt``) came from the user (Ctrl-C, SIGTERM) rather than
    from code that raised it. Decidable while the CLI's :func:`on_sigint` is installed, and when
    SIGINT is ignored (``nohup``, a background job of a script: no Ctrl-C can raise anything);
    otherwise the benefit of the doubt goes to the user."""
    if isinstance(exc, (Interrupted, Terminated)):
        return True
    try:
        return signal.getsignal(signal.SIGINT) not in (on_sigint, signal.SIG_IGN)
    except ValueError:  # pragma: no cover - not the main interpreter
        return True


def is_plugin_fault(exc: BaseException) -> bool:
    """Whether ``exc``, raised by plugin code, is the plugin's failure (to be reported as a broken
    plugin) rather than something to let through (the user's interrupt, a deadline, GeneratorExit)."""
    if isinstance(exc, (Exception, SystemExit, PluginExit)):
        return True
    return isinstance(exc, KeyboardInterrupt) and not is_users_interrupt(exc)


def describe(exc: BaseException) -> str:
    """One line saying what plugin code did: ``called sys.exit(3)``, ``called os._exit(0)``,
    ``raised KeyboardInterrupt (nobody pressed Ctrl-C)``, else ``TypeName: message``."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, PluginExit):
        return f"called os._exit({exc.status!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt (nobody pressed Ctrl-C)"
    return f"{type(exc).__name__}: {exc}"


def _raise_plugin_exit(status: Any = 0) -> NoReturn:
    raise PluginExit(status)


@contextmanager
def no_process_exit() -> Iterator[None]:
    """While the block runs, ``os._exit`` raises :class:`PluginExit` instead of ending the
    process (in every thread of it); the real one is restored afterwards."""
    real = os._exit
    os._exit = _raise_plugin_exit
    try:
        yield
    finally:
        os._exit = real
