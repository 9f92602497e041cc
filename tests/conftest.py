"""Shared test set-up: offline, guarded against the network, on the smoke profile, one cache.

Every test of a session shares one kit cache, ``.test-cache/`` in the checkout (or
``$KIT_TEST_CACHE``): the converted model, the smoke adapters and the smoke comparison are built
once per session and then reused, a clean clone starts from an empty cache exactly as CI does, and
the tests never write into a learner's own cache. Tests about building a thing use their own
``tmp_path`` cache.

`make test` runs two worker processes (pytest-xdist, ``-n 2``). The tests that train, change or
read the shared smoke adapters and comparison are scheduled as one unit (see
:func:`shares_artefacts` and :func:`pytest_xdist_make_scheduler`): one worker runs them, one after
another, while the other takes the rest. The model conversion is safe to race (each process
writes its own temporary folder and renames it into place).
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
# An empty hub cache: what the tests see never depends on the models this machine downloaded.
os.environ["HF_HUB_CACHE"] = str(TEST_CACHE / "hub-cache")
# `make test` runs the tests in two worker processes (pytest-xdist). Each keeps torch's threads:
# a worker alone on the machine uses every core. Threads that wait at a barrier sleep instead of
# spinning, so two workers computing at once share the cores without burning them (measured on
# the emulated slow kind: 14:27 against 16:13 with one thread per worker).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


# The tests that train, change or read the shared smoke adapters and comparison: one worker runs
# them, one after another. Whole modules, and the notebooks whose code trains or reads them
# (notebook 06 trains too, but into its own folder: it runs beside them).
SHARED_ARTEFACT_MODULES = (
    "tests/test_browser.py",
    "tests/test_grid_bench.py",
    "tests/test_run.py",
    "tests/test_workshop.py",
)
SHARED_ARTEFACT_CALLS = ("train_adapter(", "run_comparison(", "load_adapter(")
SHARED_ARTEFACT_NOTEBOOKS = ("05_decide.ipynb",)  # reads the costs the comparison measured


def shares_artefacts(nodeid: str) -> bool:
    """Whether the test ``nodeid`` trains, changes or reads the shared smoke artefacts.

    Decided from the node id alone: pytest-xdist's main process schedules by node ids.
    """
    module, _, name = nodeid.partition("::")
    if module in SHARED_ARTEFACT_MODULES:
        return True
    if module != "tests/test_notebooks.py" or "[" not in name:
        return False  # only notebooks that are run can train or read the artefacts
    folder = "notebooks" if name.startswith("test_notebook_runs") else "exercises"
    notebook = ROOT / folder / name[name.index("[") + 1 : name.rindex("]")]
    if notebook.name in SHARED_ARTEFACT_NOTEBOOKS:
        return True
    return any(call in notebook.read_text() for call in SHARED_ARTEFACT_CALLS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the shared comparison must be scheduled with the others."""
    strays = [
        i.nodeid
        for i in items
        if "smoke_comparison" in getattr(i, "fixturenames", ()) and not shares_artefacts(i.nodeid)
    ]
    if strays:
        raise pytest.UsageError(
            f"{strays} use smoke_comparison: add their module to SHARED_ARTEFACT_MODULES in "
            "tests/conftest.py, so that one worker runs every test of the shared artefacts"
        )


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, in the main process
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Hand out tests one by one, except those of the shared artefacts: one unit, one worker.

    (pytest-xdist's own ``--dist loadgroup`` renames node ids, which pytest 9 ignores: its
    groups are silently split.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class SharedArtefactsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "shared artefacts" if shares_artefacts(nodeid) else nodeid

    return SharedArtefactsTogether(config, log)


# Figures that tests measure (e.g. time to first answer) are printed at the end of the run; a
# worker process hands its figures to the main process when it finishes.
FIGURES: dict[str, str] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["figures"] = dict(FIGURES)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: the main process, a worker finished
def pytest_testnodedown(node, error) -> None:
    FIGURES.update(getattr(node, "workeroutput", {}).get("figures", {}))


@pytest.fixture(scope="session")
def smoke_comparison():
    """The smoke comparison (both adapters, the grid, the three experiments), once per session.

    ``run_comparison`` caches it in the test cache, so notebook 04, exercise 03, the browser
    test, the main job and the workshop all read this one result instead of computing their own.
    A file lock makes a second worker that asks for it wait and then read the cached result.
    """
    from filelock import FileLock

    from kit.compare import run_comparison

    start = time.perf_counter()
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(TEST_CACHE / "smoke-comparison.lock"):
        result = run_comparison("smoke", progress=False)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.meta.get("timings", {}).items())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "one process")
    FIGURES[f"smoke comparison (session fixture, {worker})"] = (
        f"{time.perf_counter() - start:.0f} s here; when computed: {stages}"
    )
    return result


@pytest.fixture(scope="session")
def index():
    """The bundled knowledge base (v1) indexed with the kit's defaults, once per session.

    Shared read-only: a test that changes an index builds its own.
    """
    from kit.indexing import build_index

    return build_index()


@pytest.fixture(scope="session")
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
