"""Shared test set-up: offline, guarded against the network, on the smoke profile."""

from __future__ import annotations

import os

# Before any library is imported: no hub, no telemetry, small sizes.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("KIT_PROFILE", "smoke")

import pytest  # noqa: E402

from kit import netguard  # noqa: E402

netguard.install()


@pytest.fixture(autouse=True)
def _no_network_attempts():
    """Fail any test during which code tried to reach a non-loopback address."""
    before = len(netguard.attempts)
    yield
    tried = netguard.attempts[before:]
    assert not tried, f"code tried to open network connections: {tried}"


# Figures that tests measure (e.g. time to first answer) are printed at the end of the run.
FIGURES: dict[str, str] = {}


@pytest.fixture
def report_figure():
    """Call ``report_figure(name, value)`` to have a measured figure printed after the tests."""

    def record(name: str, value: str) -> None:
        FIGURES[name] = value

    return record


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured by the tests")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
