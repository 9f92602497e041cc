"""Shared test set-up: offline, guarded against the network, on the smoke profile, one cache.

Every test of a session shares one kit cache, ``.test-cache/`` in the checkout (or
``$KIT_TEST_CACHE``): the converted model, the smoke adapters and the smoke comparison are built
once per session and then reused, a clean clone starts from an empty cache exactly as CI does, and
the tests never write into a learner's own cache. Tests about building a thing use their own
``tmp_path`` cache.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_CACHE = Path(os.environ.get("KIT_TEST_CACHE") or ROOT / ".test-cache")

# Before any library is imported: no hub, no telemetry, small sizes.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("KIT_PROFILE", "smoke")
os.environ["KIT_CACHE"] = str(TEST_CACHE)  # notebook kernels and subprocesses inherit it

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


@pytest.fixture(scope="session")
def smoke_comparison():
    """The smoke comparison (both adapters, the grid, the three experiments), once per session.

    ``run_comparison`` caches it in the test cache, so notebook 04, exercise 03, the browser
    test, the main job and the workshop all read this one result instead of computing their own.
    """
    from kit.compare import run_comparison

    start = time.perf_counter()
    result = run_comparison("smoke", progress=False)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.meta.get("timings", {}).items())
    FIGURES["smoke comparison (session fixture)"] = (
        f"{time.perf_counter() - start:.0f} s here; when computed: {stages}"
    )
    return result


@pytest.fixture(scope="module")
def index():
    """The bundled knowledge base (v1) indexed with the kit's defaults, once per test module."""
    from kit.rag import build_index

    return build_index()


@pytest.fixture(scope="module")
def lm():
    """The bundled generator and its tokenizer, at the kit's precision for this machine."""
    from kit.models import load_generator

    return load_generator(dtype="auto")  # the kit's choice here: float32 on AVX2-only CPUs


@pytest.fixture(scope="module")
def hybrid(index, lm):
    """A hybrid-retrieval RAG over :func:`index` answering with :func:`lm` (smoke sizes)."""
    from kit.rag import build_rag

    return build_rag(index, "hybrid", generator=lm, profile="smoke", max_new_tokens=24)


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


@pytest.fixture(scope="session")
def converted() -> Path:
    """The bundled generator converted into the session's cache (done once, then reused)."""
    from kit import models

    return Path(models.convert_gguf("smollm2-135m-instruct", dtype="bfloat16"))
