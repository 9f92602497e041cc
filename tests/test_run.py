"""The main job (`make demo` = `python -m kit run`) writes its report."""

from __future__ import annotations

import re

import pandas as pd

from kit.report import Report
from kit.run import run_all


def test_main_job_writes_a_report(tmp_path, smoke_comparison):
    path = run_all(profile="smoke", out_dir=tmp_path)  # reads the session's smoke comparison
    html = path.read_text()
    assert path.name == "report.html" and path.parent == tmp_path.resolve()
    assert "Machine check" in html and "smollm2-135m-instruct" in html and "384-dim vector" in html
    sections = ("Retrieval: BM25", "The grid", "Sources in the prompt", "Freshness", "Privacy")
    assert "Citations: written by the model, or attributed by the kit" in html
    for section in (*sections, "Prompt injection"):
        assert section in html, section
    assert "style adapter (trained without sources): style" in html
    assert "<td>NaN</td>" not in html  # no citation precision for systems that never cite: "–"
    assert html.index("What this run found") < html.index("Machine check")  # verdict first
    assert "Is the difference real?" in html and "95% CI" in html
    assert re.search(r"<td>\d\.\d\d \[\d\.\d\d, \d\.\d\d\]</td>", html)  # intervals
    for system in ("hybrid-raft", "rag (re-indexed v2)", "rag (employee role filter)"):
        assert system in html, system
    assert html.count("<img") >= 3  # retrieval modes and two loss curves, embedded
    assert "src='http" not in html and 'src="http' not in html  # self-contained


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
