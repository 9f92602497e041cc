"""Widget notebooks render and respond in JupyterLab, in a real headless browser.

Every notebook whose metadata has {"kit": {"widgets": true}} is opened in JupyterLab (served
from a temporary copy), run with Run > Run All Cells, and checked: its widgets render, no
"Error displaying widget" and no traceback appear, no label or dropdown choice is cut off at
1400 px, and changing a control through the UI updates that view's output. Needs Debian's
chromium and Playwright: the test fails (it does not skip) with the install commands when either
is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = browser.widget_notebooks(ROOT / "notebooks")
LAB_ENV = {
    "KIT_PROFILE": "smoke",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def test_there_are_widget_notebooks():
    assert NOTEBOOKS, 'no notebook in notebooks/ has metadata {"kit": {"widgets": true}}'


# The question writer of notebook 06 over two chunks: notebook 06 itself fine-tunes and runs
# the grid on your documents, minutes beyond a page's patience, so its form is tried alone.
WRITER_CELL = """from haystack import Document
from kit import widgets

chunks = [
    Document(content="The tank holds 800 litres.", meta={"id": "tank.md", "title": "Tank"}),
    Document(content="The pump runs at 40 rpm.", meta={"id": "pump.md", "title": "Pump"}),
]
widgets.question_writer(chunks, "my_questions.jsonl")"""
ANSWERS = {"800 litres": "How much water does the tank hold?", "40 rpm": "How fast is the pump?"}


@pytest.fixture(scope="module")
def lab_and_browser(smoke_comparison, tmp_path_factory):
    # Notebook 04 reads the comparison; computing it takes minutes, far beyond a page's patience,
    # so the session's smoke comparison (cached, exactly as `make demo` leaves it) comes first.
    import nbformat

    problem = browser.missing_tools()
    if problem:
        pytest.fail(problem)
    writer = tmp_path_factory.mktemp("writer") / "question_writer.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WRITER_CELL)]), writer)
    with (
        browser.lab_server([*NOTEBOOKS, writer], LAB_ENV) as lab,
        browser.open_browser() as context,
    ):
        yield lab, context


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widgets_render_and_respond_in_jupyterlab(lab_and_browser, path: Path, tmp_path):
    lab, context = lab_and_browser
    page = browser.run_notebook(context, lab, path.name)
    try:
        expected = browser.save_and_count_widget_outputs(page, lab.root / path.name)
        report = browser.widget_report(page, expected)
        assert not report.errors, f"{path.name} shows errors:\n" + "\n---\n".join(report.errors)
        assert report.expected > 0, f"{path.name} displayed no widget"
        assert report.rendered == report.expected, (
            f"{path.name}: {report.rendered} of {report.expected} widget outputs rendered"
        )
        assert page.locator(".widget-html, .widget-dropdown, .widget-slider").count() > 0
        cut = browser.cut_labels(page)
        assert not cut, f"{path.name}: labels or choices cut off at 1400 px: {cut}"
        problems = browser.change_each_view(page)
        assert not problems, f"{path.name}: " + "; ".join(problems)
    except AssertionError:
        shot = tmp_path / f"{path.stem}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
        raise
    finally:
        page.close()


@pytest.mark.notebook
def test_the_question_writer_saves_what_is_typed_in_the_browser(lab_and_browser, tmp_path):
    """Notebook 06's form in JupyterLab: its labels are whole, an empty save says what to
    write and saves nothing, and a question typed and saved through the page is in the file."""
    import json

    lab, context = lab_and_browser
    page = browser.run_notebook(context, lab, "question_writer.ipynb")
    saved = lab.root / "my_questions.jsonl"
    try:
        assert not browser.cut_labels(page), browser.cut_labels(page)
        page.click("button:has-text('Save question')")
        page.wait_for_selector("text=write a question and its answer first", timeout=20_000)
        assert not saved.exists() or not saved.read_text().strip()
        shown = page.locator(".widget-html").first.inner_text()
        answer = next(a for a in ANSWERS if a in shown)
        fields = page.locator(".widget-text input")
        fields.nth(0).fill(ANSWERS[answer])
        fields.nth(1).fill(answer)
        page.click("button:has-text('train: teaches them')")  # a train question
        page.click("button:has-text('Save question')")
        page.wait_for_selector("text=Saved.", timeout=20_000)
        rows = [json.loads(line) for line in saved.read_text().splitlines()]
        assert [(r["question"], r["answer"], r["split"]) for r in rows] == [
            (ANSWERS[answer], answer, "train")
        ]
        assert (
            "train: 1 answerable, 0 not answerable"
            in page.locator(".widget-html").first.inner_text()
        )
        other = next(a for a in ANSWERS if a != answer)  # the form moved on to the other chunk
        assert other in page.locator(".widget-html").first.inner_text()
    except AssertionError:
        shot = tmp_path / "question_writer.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
        raise
    finally:
        page.close()
