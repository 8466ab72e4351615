"""Hypothesis settings of the fuzz tests.

Every property runs twice: in the default suite under the ``ddr-fuzz`` profile (a few hundred
examples, derandomized so the suite is deterministic), and under ``-m slow`` with the
``ddr-fuzz-slow`` profile (several thousand examples). A test asks for the ``fuzz_settings``
fixture and applies it to its ``@given`` property (``run_property`` below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers.fuzzing import DEFAULT_EXAMPLES, DEFAULT_PROFILE, SLOW_EXAMPLES, SLOW_PROFILE
from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    "deadline": None,  # the first example of a test pays for imports and plugin loading
    "derandomize": True,  # the same examples every run: the default suite is deterministic
    "database": None,  # nothing written into the working tree (.hypothesis/)
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                              HealthCheck.large_base_example],
}
settings.register_profile(DEFAULT_PROFILE, max_examples=DEFAULT_EXAMPLES, **_COMMON)
settings.register_profile(SLOW_PROFILE, max_examples=SLOW_EXAMPLES, **_COMMON)


@pytest.fixture(params=[pytest.param(DEFAULT_PROFILE, id="default"),
                        pytest.param(SLOW_PROFILE, id="slow", marks=pytest.mark.slow)])
def fuzz_settings(request: pytest.FixtureRequest) -> settings:
    """The settings a property runs under: ``ddr-fuzz`` in the default suite, ``ddr-fuzz-slow``
    under ``-m slow``."""
    return settings.get_profile(request.param)


@pytest.fixture
def run_property(fuzz_settings: settings) -> Callable[..., None]:
    """``run_property(test, *strategies, examples=None)``: run the ``@given`` property ``test``
    under the profile (``examples`` scales the profile's count, e.g. 0.8 for a slow property)."""
    from hypothesis import given

    def run(test: Callable[..., None], *strategies: Any, examples: float = 1.0) -> None:
        chosen = settings(fuzz_settings, max_examples=max(1, int(fuzz_settings.max_examples * examples)))
        chosen(given(*strategies)(test))()

    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """``DDR_FUZZ_STATS=1``: print how often each outcome (valid, or which error) occurred."""
    import os

    from helpers.fuzzing import OUTCOMES

    if os.environ.get("DDR_FUZZ_STATS") and OUTCOMES:
        terminalreporter.section("fuzz outcomes")
        for outcome, count in OUTCOMES.most_common():
            terminalreporter.write_line(f"{count:7d}  {outcome}")
