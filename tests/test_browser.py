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


@pytest.fixture(scope="module")
def lab_and_browser(smoke_comparison):
    # Notebook 04 reads the comparison; computing it takes minutes, far beyond a page's patience,
    # so the session's smoke comparison (cached, exactly as `make demo` leaves it) comes first.
    problem = browser.missing_tools()
    if problem:
        pytest.fail(problem)
    with browser.lab_server(NOTEBOOKS, LAB_ENV) as lab, browser.open_browser() as context:
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
