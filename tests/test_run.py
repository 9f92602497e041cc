"""The main job (`make demo` = `python -m kit run`) writes its report.

`make demo` runs here exactly as the README says (in this checkout: CI's clean clone, whose
``make test`` has just built the fresh .venv from the lock), on the session's smoke comparison.
The fresh venv, the empty model cache and the smoke adapters trained from scratch are each
exercised once per session already (CI's own set-up, the session cache, ``smoke_comparison``):
running them a second time here cost CI minutes and tested nothing new.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kit.report import Report

ROOT = Path(__file__).resolve().parent.parent
NETWORK_GUARD = """
import atexit, os, sys
from kit import netguard
netguard.install()


@atexit.register
def _fail_if_it_tried_to_go_online():
    if netguard.attempts:
        sys.stderr.write(f"tried to go online: {netguard.attempts}\\n")
        sys.stderr.flush()
        os._exit(3)
"""


@pytest.mark.slow
def test_make_demo_writes_the_report(tmp_path, smoke_comparison, report_figure):
    if shutil.which("make") is None:
        pytest.fail("this test needs make (apt-get install make)")
    venv = ROOT / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() or not venv.exists():
        pytest.fail(f"run the tests with `make test` (the kit's .venv), not {sys.executable}")
    stale = subprocess.run(["make", "-q", "setup"], cwd=ROOT, capture_output=True).returncode
    if stale:
        pytest.fail("the .venv is older than the lock or pyproject.toml: run `make setup` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "KIT_PROFILE"))}
    guard = tmp_path / "guard"  # the network guard of the tests, in the make demo process too
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(guard), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    proc = subprocess.run(
        ["make", "--no-print-directory", "demo", "PROFILE=smoke", f"OUT={tmp_path}"],
        cwd=ROOT,
        env=env,  # KIT_CACHE: the session's cache, so the smoke comparison is read, not redone
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, f"make demo failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert re.search(r"smollm2-135m-instruct: '", proc.stdout), "no first answer printed"
    assert "Reusing the cached comparison" in proc.stdout  # the session's, not a second one
    report_figure("make demo (smoke, session cache) total", f"{time.perf_counter() - start:.0f} s")
    path = tmp_path / "report.html"
    html = path.read_text()
    assert "Machine check" in html and "smollm2-135m-instruct" in html and "384-dim vector" in html
    assert "smoke profile: smollm2-135m-instruct (bundled with the kit, works offline)" in html
    sections = ("Retrieval: BM25", "The grid", "Sources in the prompt", "Freshness", "Privacy")
    assert "Citations: written by the model, or attributed by the kit" in html
    assert "what the learned decision did to each RAG" in html
    for section in (*sections, "Prompt injection"):
        assert section in html, section
    assert "style adapter (trained without sources): style" in html
    # v2 re-indexed after v1 in the same process: v1's chunks were not embedded again (an
    # earlier test of this worker may have embedded v2's own already: 0 is possible)
    embedded = re.search(r"\((\d+) of (\d+) chunks embedded, the others kept their vectors\)", html)
    assert embedded and int(embedded[1]) < int(embedded[2])
    assert "<td>NaN</td>" not in html  # no citation precision for systems that never cite: "–"
    assert html.index("What this run found") < html.index("Machine check")  # verdict first
    assert "Is the difference real?" in html and "95% CI" in html
    assert re.search(r"<td>\d\.\d\d \[\d\.\d\d, \d\.\d\d\]</td>", html)  # intervals
    for system in ("hybrid-raft", "rag (re-indexed v2)", "rag (employee role filter)"):
        assert system in html, system
    assert html.count("<img") >= 3  # retrieval modes and two loss curves, embedded
    assert "src='http" not in html and 'src="http' not in html  # self-contained


def test_the_grid_gives_every_rag_the_learned_gate(smoke_comparison):
    table = smoke_comparison.extras["abstention"]
    assert list(table["system"].unique()) == ["rag", "hybrid", "hybrid-raft"]
    scores = smoke_comparison.scores
    for name, group in table.groupby("system", sort=False):
        grid = scores[scores["system"] == name]
        assert group["id"].tolist() == grid["id"].tolist()
        assert group["correct"].tolist() == grid["correct"].tolist()  # the grid is gated
        answers = smoke_comparison.answers[name]
        assert group["by_decision"].tolist() == [bool(a.withheld) for a in answers]
    assert "base" not in set(table["system"])  # nothing retrieved: no signal to decide on
    assert smoke_comparison.meta["timings"]["gate_s"] > 0
    gate = smoke_comparison.meta["gate"]
    assert gate["train_questions"] == 16 and 0 < gate["threshold"] < 1  # declines some (smoke: 16)
    for name in ("rag", "hybrid", "hybrid-raft"):  # the gate decided on every answer it could
        reached = [a for a in smoke_comparison.answers[name] if a.signals]
        assert reached and all("p_unanswerable" in a.signals for a in reached), name


def test_a_run_without_a_learned_gate_says_why_in_the_report(tmp_path):
    from kit.compare import GridResult
    from kit.run import _abstention

    why = "on its 16 train questions no threshold declines an unanswerable one"
    empty = pd.DataFrame()
    report = Report("t")
    _abstention(report, GridResult(empty, {}, empty, meta={"gate_note": why}))
    html = report.write(tmp_path / "r.html").read_text()
    assert f"No learned decision in this run: {why}." in html
    quiet = Report("t")  # an older cached result without the note: no section
    _abstention(quiet, GridResult(empty, {}, empty))
    assert not quiet.sections


def test_report_tables_escape_and_write_atomically(tmp_path):
    r = Report("t")
    r.add_table("rows", [{"a": "<b>", "b": 1, "c": None}, {"a": "x", "b": float("nan")}])
    r.add_table("frame", pd.DataFrame({"system": ["rag"], "citation_precision": [float("nan")]}))
    path = r.write(tmp_path / "x" / "r.html")
    html = path.read_text()
    assert "&lt;b&gt;" in html and not list(path.parent.glob(".*tmp*"))
    assert html.count("<td>–</td>") == 3 and "NaN" not in html and "None" not in html


def test_the_verdict_leads_the_report_with_nested_items(tmp_path):
    r = Report("t")
    r.add_text("Machine check", "ok")
    r.add_lead("What this run found", ["Best: rag.", "After the update:", "  rag: 1.00", "Done <"])
    html = r.write(tmp_path / "r.html").read_text()
    assert html.index("What this run found") < html.index("Machine check")
    assert "<li>After the update:<ul><li>rag: 1.00</li></ul></li>" in html
    assert "<li>Best: rag.</li>" in html and "<li>Done &lt;</li>" in html
