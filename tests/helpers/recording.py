"""Wrap a method of an object so a test sees what each call returned (the networks a selection
method trained or loaded, for instance), the call itself unchanged."""

from __future__ import annotations

from typing import Any


def record_returns(obj: Any, name: str) -> list[Any]:
    """Replace ``obj.name`` by a wrapper that appends each call's return value to the returned list."""
    original = getattr(obj, name)
    returned: list[Any] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        returned.append(original(*args, **kwargs))
        return returned[-1]

    setattr(obj, name, recording)
    return returned
