"""Every user-facing failure is a :class:`DdrError`.

The CLI prints these without a traceback and exits with status 2 (``--debug`` shows the
traceback). Messages say what was wrong *and* what to do about it.
"""

from __future__ import annotations

from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a scheduler or ``kill`` ended the run); the CLI exits 143."""

    exit_code = 143


class Interrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C (SIGINT, through the CLI's handler); the CLI exits 130. A bare
    ``KeyboardInterrupt`` raised while that handler is installed came from code instead
    (:func:`ddr.plugin.faults.is_users_interrupt`)."""

    exit_code = 130


class DdrError(Exception):
    """Base class of all errors ddr reports to a user."""

    exit_code = 2


class InvalidSpecError(DdrError):
    """A spec record (or the hookimpl returning it) is malformed."""


class PluginLoadError(DdrError):
    """A plugin could not be imported or registered."""

    def __init__(self, name: str, distribution: str | None, version: str | None, cause: BaseException | str):
        self.name = name
        self.distribution = distribution
        self.version = version
        self.cause = cause
        dist = f" ({distribution} {version})" if distribution else ""
        reason = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"plugin '{name}'{dist} failed to load: {reason}\n"
            f"  fix the plugin or its dependencies, or block it with -p no:{name} "
            f"(or DDR_DISABLE_PLUGINS={name})"
        )


class UnknownComponentError(DdrError):
    """A name that no plugin provides."""


class AmbiguousComponentError(DdrError):
    """A name that more than one plugin provides."""


class ConfigError(DdrError):
    """A YAML config or protocol file, or a --set override, is invalid."""


class DataError(DdrError):
    """A dataset is missing, corrupt or in an unexpected layout."""


class DistilledSetError(DdrError):
    """A distilled set does not match what the evaluation expects (shape, labels, values)."""


class ArtifactError(DdrError):
    """A file on disk (distilled set, checkpoint, cache entry) cannot be read safely."""


def portable_error(exc: DdrError) -> dict[str, Any]:
    """What of a DdrError crosses a process boundary (a Ray task's reply): its class, args and
    the attributes that pickle. :func:`rebuilt_error` makes the same error from it."""
    import pickle

    state = {}
    for key, value in vars(exc).items():
        try:
            pickle.dumps(value)
        except Exception:  # an attribute that cannot travel is left out
            continue
        state[key] = value
    return {"cls": type(exc), "args": exc.args, "state": state}


def rebuilt_error(record: dict[str, Any]) -> BaseException:
    """The DdrError of :func:`portable_error`, same class and message, without calling its
    ``__init__`` (whose signature may differ from its args)."""
    cls = record["cls"]
    assert isinstance(cls, type) and issubclass(cls, BaseException)
    exc = cls.__new__(cls)
    exc.args = tuple(record["args"])
    exc.__dict__.update(record["state"])
    return exc
