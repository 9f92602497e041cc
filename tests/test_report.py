"""kit.report: one self-contained HTML file, section by section, safe to open anywhere."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kit.inputs import InputError  # noqa: E402
from kit.report import Report  # noqa: E402
from kit.run import run_all  # noqa: E402


def test_the_verdict_leads_and_every_section_follows_in_order(tmp_path: Path):
    report = Report(title="Run <1>", profile="smoke")
    report.add_text("Machine check", "[ ok ] cpu\n[FAIL] cache")
    report.add_lead("What this run found", ["Best: rag.", "  rag vs base: +25 points.", "Done."])
    html = report.to_html()
    assert html.index("What this run found") < html.index("Machine check")  # verdict first
    assert "<li>Best: rag.<ul><li>rag vs base: +25 points.</li></ul></li>" in html  # sub-item
    assert "<li>Done.</li>" in html and "<ul></ul>" not in html
    assert "Run &lt;1&gt;" in html and "profile smoke" in html  # escaped title, the profile


def test_tables_show_a_dash_for_missing_values_and_escape_text():
    report = Report(title="t")
    report.add_table("Rows", [{"system": "<b>rag</b>", "value": math.nan, "n": None}])
    frame = pd.DataFrame({"system": ["rag"], "recall": [0.8125], "mrr": [float("nan")]})
    report.add_table("Frame", frame, note="a & b")
    html = report.to_html()
    assert "&lt;b&gt;rag&lt;/b&gt;" in html and "<b>rag</b>" not in html
    assert html.count("<td>–</td>") == 3  # NaN and None in rows, NaN in the frame
    assert "0.81" in html and "0.8125" not in html  # two decimals, not false precision
    assert "<p>a &amp; b</p>" in html and html.count("class='wide'") == 2  # wide tables scroll


def test_a_figure_is_embedded_and_the_file_written_atomically(tmp_path: Path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    report = Report(title="t")
    report.add_figure("Loss", fig)
    plt.close(fig)
    path = report.write(tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "src='data:image/png;base64," in text and "alt='Loss'" in text
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left


def test_a_report_html_the_kit_did_not_write_is_kept(tmp_path):
    mine = tmp_path / "report.html"
    mine.write_text("<html><body>My own notes</body></html>")
    with pytest.raises(InputError, match="not a report the kit wrote, so it is kept"):
        Report("RAG vs fine-tuning").write(mine)
    assert mine.read_text() == "<html><body>My own notes</body></html>"
    old = "<!doctype html><html><head></head><body><h1>x</h1><p>kit 0.0.9, profile cpu, 2026"
    mine.write_text(old)  # a report of an earlier kit version: replaced
    assert Report("again").write(mine) == mine.resolve() and "again" in mine.read_text()
    assert Report("and again").write(mine) == mine.resolve()  # its own report, every run
    (tmp_path / "yours").mkdir()
    (tmp_path / "yours" / "report.html").write_text("My own notes")
    with pytest.raises(InputError, match="not a report the kit wrote"):  # before any work
        run_all("smoke", out_dir=tmp_path / "yours")
