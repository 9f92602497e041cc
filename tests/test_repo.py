"""Repo hygiene: stripped notebooks, one lock for versions, CI calls make test."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALL_NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/*.ipynb")])


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stripped(path: Path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a cell has saved outputs (make lint)"
            assert cell.get("execution_count") is None, f"{path.name}: execution counts saved"


def test_lock_pins_everything_exactly():
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) > 50
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.\-]+", line), line
    assert "torch==2.13.0" in lines


def test_environment_yml_and_colab_use_the_lock():
    env = (ROOT / "environment.yml").read_text()
    assert "requirements.lock" in env and "python=3.11" in env
    assert "requirements-models.txt" in env
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "requirements.lock" in readme  # the manual instructions use the lock too
    assert "kit.colab.main()" in readme  # Colab: the lock, minus what Colab is built on


def _torch_install_line(*make_args: str) -> str:
    """The pip command `make setup` would run first, as `make -n` prints it."""
    dry = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), *make_args, ".venv/.kit-installed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    joined = dry.replace("\\\n", " ")
    return next(line for line in joined.splitlines() if "pip install" in line)


def test_torch_comes_first_and_from_torch_index_when_set():
    plain = _torch_install_line()
    assert "^torch==" in plain and "--index-url" not in plain  # a local mirror keeps working
    cpu = "https://download.pytorch.org/whl/cpu"
    chosen = _torch_install_line(f"TORCH_INDEX={cpu}")
    assert f"--index-url {cpu}" in chosen and "^torch==" in chosen
    readme = (ROOT / "README.md").read_text()
    assert f"TORCH_INDEX={cpu}" in readme  # the README says when to set it


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and line[0] != "#"]
    runs = [c for c in commands if c.startswith("make ")]
    assert runs == ["make test || status=$?"], runs  # the README's command, and only it
    assert commands[-1] == 'exit "$status"'  # its exit status is CI's
    assert "make test" in (ROOT / "README.md").read_text()


# --------------------------------------------------------------------------- layers

# README.md's picture ("How the kit is built"), lowest layer first. A module may import modules
# of its own layer or of a lower one, never of a higher one: what sits low (citations, models,
# the RAG pipeline) stays usable, testable and fast to import without what is built on it.
# A layer is a stage and its helpers (kit.rag with kit.indexing, kit.retrieval, kit.prompts
# and kit.store; kit.finetune with kit.adapters and kit.chat_data), so modules of one layer may
# import each other, one way only:
# test_kit_has_no_import_cycles fails on any cycle. kit/__init__.py ("__init__") sits on top:
# its kit.doctor() shortcut imports the doctor; everything may import the package itself
# (``import kit``, ``from kit import __version__``), which Python runs before any kit module.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundations",
        {"citations", "colab", "colab_cells", "netguard", "runtime", "inputs", "processes"},
    ),
    (
        "the machine, models and data",
        {"profiles", "doctor", "models", "data", "generate", "decode", "question_writer"},
    ),
    (
        "the two ways: RAG and fine-tuning",
        {"store", "postgres", "prompts", "attribution", "embeddings", "indexing", "retrieval"}
        | {"rag", "saved_index"}
        | {"chat_data", "adapters", "finetune"},
    ),
    ("scores", {"stats", "evaluate"}),
    ("RAG measured", {"rag_eval", "abstain"}),
    ("hybrid", {"hybrid"}),
    ("the comparison", {"compare"}),
    ("results", {"costs", "decide", "widgets", "verdict", "report"}),
    (
        "jobs and entry points",
        {"__init__", "__main__", "run", "rag_bench", "grid_bench", "finetune_bench", "workshop"}
        | {"checks", "exercises", "your_data", "serve"},
    ),
]
KIT = ROOT / "kit"


def _module_name(path: Path) -> str:
    """kit/rag.py -> "rag", kit/exercises/rag.py -> "exercises.rag", kit/__init__.py ->
    "__init__"."""
    parts = path.relative_to(KIT).with_suffix("").parts
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _group(module: str) -> str:
    """A module's name in LAYERS: its first part (each kit.exercises module is "exercises")."""
    return module.split(".")[0]


def _kit_imports(path: Path) -> list[tuple[int, str]]:
    """(line, kit module) for every import of a kit module in a file: at the top, inside functions
    and under TYPE_CHECKING alike. Imports of the package itself are left out (see LAYERS)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; write kit.<module>"
            if node.module == "kit":  # from kit import rag, __version__
                names = [f"kit.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "kit" or len(parts) == 1:
                continue
            if (KIT / f"{parts[1]}.py").is_file() or (KIT / parts[1]).is_dir():
                found.append((node.lineno, ".".join(parts[1:])))
    return found


KIT_FILES = sorted(KIT.rglob("*.py"))


def test_every_kit_module_is_in_one_layer():
    grouped = [m for _, modules in LAYERS for m in modules]
    assert len(grouped) == len(set(grouped)), "a module is in two layers"
    present = {_group(_module_name(p)) for p in KIT_FILES}
    assert present == set(grouped), (
        f"not in LAYERS (add them where README.md's picture shows them): {present - set(grouped)}; "
        f"in LAYERS but gone: {set(grouped) - present}"
    )


def test_no_module_imports_a_higher_layer():
    rank = {m: i for i, (_, modules) in enumerate(LAYERS) for m in modules}
    wrong = []
    for path in KIT_FILES:
        module = _module_name(path)
        for line, target in _kit_imports(path):
            if rank[_group(target)] > rank[_group(module)]:
                wrong.append(
                    f"kit.{module} (layer {LAYERS[rank[_group(module)]][0]!r}) imports "
                    f"kit.{target} (layer {LAYERS[rank[_group(target)]][0]!r}) at "
                    f"{path.relative_to(ROOT)}:{line}"
                )
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)


def test_kit_has_no_import_cycles():
    graph = {_module_name(p): {t for _, t in _kit_imports(p)} for p in KIT_FILES}
    for name in list(graph):  # "from kit.exercises import rag" names the package
        graph[name] = {t if t in graph else _group(t) for t in graph[name]} - {name}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(f"kit.{m}" for m in cycle))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_readme_picture_shows_the_layers():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## How the kit is built", 1)[1]
    picture = section.split("```", 2)[1]
    blocks = [b for b in re.split(r"\n\s*\n", picture) if b.strip()]
    drawn = [set(re.findall(r"\bkit\.([A-Za-z_]+)", b)) for b in reversed(blocks)]  # top = highest
    expected = [modules - {"__init__"} for _, modules in LAYERS]
    assert drawn == expected, (
        "README.md's picture (one block per layer, the highest on top, each module named in its "
        f"own block only) and LAYERS differ:\n  picture: {drawn}\n  LAYERS:  {expected}"
    )


def test_every_kit_module_has_a_test_module_named_after_it():
    # kit/__init__.py and kit/__main__.py are the package and its command line: the commands
    # are tested with what they run (test_run, test_doctor, test_your_data, ...).
    modules = [p.stem for p in KIT.glob("*.py") if not p.stem.startswith("__")]
    missing = [m for m in modules if not (ROOT / "tests" / f"test_{m}.py").is_file()]
    assert not missing, f"no tests/test_<module>.py for: {missing}"
    checks = {f"exercise_{p.stem}" for p in (KIT / "exercises").glob("*.py")}  # kit/exercises
    extra = {"bad_input", "browser", "catalog", "notebooks", "repo"} | checks
    orphans = [
        p.stem.removeprefix("test_")
        for p in (ROOT / "tests").glob("test_*.py")
        if p.stem.removeprefix("test_") not in set(modules) | extra
    ]
    assert not orphans, f"test modules named after no kit module: {orphans}"
