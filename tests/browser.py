"""Run widget notebooks in JupyterLab in a real headless browser (Debian chromium + Playwright).

Used by tests/test_browser.py. :func:`lab_server` starts ``jupyter lab`` on 127.0.0.1 (a free
port, a random token, temporary settings / workspace / runtime folders) serving a temporary copy
of the notebooks, so the repository's files never get outputs saved into them. Its windowing mode
is "none", so every cell stays in the page (in JupyterLab 4.6, "full" virtualises the cells that
are off screen out of the page). :func:`open_browser` launches chromium through Playwright.
:func:`run_notebook` opens one notebook, runs all cells from the Run menu and waits for the kernel
to finish; :func:`save_and_count_widget_outputs`, :func:`widget_report` and
:func:`change_each_view` read and drive the rendered widgets.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "The browser test needs Debian's chromium and Playwright for Python: run "
    "`apt-get install -y chromium` and `.venv/bin/pip install playwright==1.65.2` "
    "(never `playwright install`: the kit drives /usr/bin/chromium)."
)
SETTINGS = {
    # every cell stays in the page, so the test can see all outputs
    # start the notebook's own kernel without asking (no "Select Kernel" dialog)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    # no news or update checks from the server
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def missing_tools() -> str | None:
    """None when chromium and Playwright are both installed, else how to install them."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright for Python is not installed. {INSTALL_HINT}"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing. {INSTALL_HINT}"
    return None


def widget_notebooks(folder: Path) -> list[Path]:
    """Notebooks in ``folder`` whose metadata says {"kit": {"widgets": true}}."""
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {})
        if meta.get("kit", {}).get("widgets"):
            found.append(path)
    return found


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token, served folder and process."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def lab_server(
    notebooks: Sequence[Path], env: dict[str, str], timeout: float = 60
) -> Iterator[Lab]:
    """Start JupyterLab serving copies of ``notebooks``; stop it (and its kernels) on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="kit-lab-"))
    root, settings = tmp / "root", tmp / "settings"
    root.mkdir()
    for path in notebooks:
        shutil.copy(path, root / path.name)
    for name, values in SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    token, log, runtime = secrets.token_hex(16), tmp / "lab.log", tmp / "runtime"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port=0",  # the server picks a free port as it starts; read back from its runtime file
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        command.append("--allow-root")
    lab_env = {**os.environ, **env, "JUPYTER_RUNTIME_DIR": str(runtime)}
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, env=lab_env, stdout=out, stderr=subprocess.STDOUT, cwd=root
        )
    try:
        lab = Lab(_wait_until_up(process, runtime, token, log, timeout), token, root, process, log)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_until_up(
    process: subprocess.Popen, runtime: Path, token: str, log: Path, timeout: float
) -> str:
    """The server's base URL once it answers: its port from the runtime file it writes as it
    starts (``jpserver-*.json`` in its own ``runtime`` folder)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
        for info in runtime.glob("jpserver-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                port = json.loads(info.read_text())["port"]
                if port == 0:  # an older jupyter_server wrote the port it was given (2.21 does not)
                    raise RuntimeError(f"{info} says port 0: upgrade jupyter_server (lock: 2.21)")
                url = f"http://127.0.0.1:{port}"
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as up:
                    if up.status == 200:
                        return url
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s:\n{log.read_text()}")


@contextlib.contextmanager
def open_browser() -> Iterator[Any]:
    """A headless chromium (Debian's) driven by Playwright, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="kit-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def run_notebook(context: Any, lab: Lab, name: str, timeout_s: float = 90) -> Any:
    """Open notebook ``name`` in Lab, Run > Run All Cells, wait until every cell has run.

    Out: the Playwright page, with the outputs rendered.
    """
    page = context.new_page()
    ms = timeout_s * 1000
    # A workspace of its own, reset: only this notebook is open, not the ones tested before it.
    workspace = Path(name).stem.replace(".", "-")
    url = f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={lab.token}"
    page.goto(url, timeout=ms)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=ms)
    _wait_idle(page, ms)
    page.click(".lm-MenuBar-item:has-text('Run')", timeout=ms)
    page.click(".lm-Menu-item:has-text('Run All Cells')", timeout=ms)
    # every code cell gets a number in its prompt; none is left running ([*])
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=ms,
    )
    _wait_idle(page, ms)
    # widget views render after their models arrive
    page.wait_for_function("() => !document.body.innerText.includes('Loading widget')", timeout=ms)
    return page


def _wait_idle(page: Any, ms: float) -> None:
    """Wait for a started, idle kernel ("No Kernel | Initializing" also shows as idle)."""
    page.wait_for_function(
        """() => {
            const dot = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const bar = (document.querySelector('#jp-main-statusbar') || document.body).innerText;
            return dot && dot.getAttribute('data-status') === 'idle'
                && /[|] Idle/.test(bar) && !/No Kernel/.test(bar);
        }""",
        timeout=ms,
    )


@dataclass
class WidgetReport:
    """What a notebook shows: widget outputs the kernel sent, views rendered, problems found."""

    expected: int
    rendered: int
    errors: list[str]


def save_and_count_widget_outputs(page: Any, path: Path, timeout_s: float = 20) -> int:
    """Save the notebook (Ctrl+S) and count the widget-view outputs in the saved file.

    The file is read again until it parses and has outputs: Jupyter writes it in place, so a
    read during the save can see it empty or cut short.
    """
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            cells = json.loads(path.read_text()).get("cells", [])
        except json.JSONDecodeError:  # caught mid-save: Jupyter writes the file in place
            time.sleep(0.5)
            continue
        outputs = [o for c in cells for o in c.get("outputs", [])]
        if outputs:
            return sum(WIDGET_MIME in o.get("data", {}) for o in outputs)
        time.sleep(0.5)
    raise TimeoutError(f"{path.name} was not saved with its outputs in {timeout_s:.0f} s")


def widget_report(page: Any, expected: int) -> WidgetReport:
    """Count rendered widget views; collect widget errors, leftovers and tracebacks."""
    text = page.inner_text(".jp-Notebook")
    errors = []
    for needle in ("Error displaying widget", "Loading widget", "Traceback (most recent call"):
        if needle in text:
            start = text.index(needle)
            errors.append(text[max(start - 200, 0) : start + 400])
    errors += page.locator(".jp-OutputArea-output[data-mime-type*='error']").all_inner_texts()
    rendered = page.locator(".jp-OutputArea-output > .jupyter-widgets").count()
    return WidgetReport(expected, rendered, errors)


def _poke(view: Any) -> str:
    """Change the first control of one view through the UI; say what was done."""
    select = view.locator("select").first
    if select.count():
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        other = next(o for o in options if o != current)
        select.select_option(label=other)
        return f"chose {other!r}"
    handle = view.locator(".noUi-handle").first
    if handle.count():
        handle.focus()
        handle.press("ArrowRight")
        return "moved a slider"
    button = view.locator(".widget-toggle-button:not(.mod-active)").first
    button.click()
    return "clicked a toggle button"


CUT_LABELS_JS = """() => {
  const cut = [];
  const labels = ['.widget-label', '.widget-label-basic', '.widget-checkbox label',
                  '.widget-toggle-button'].join(', ');
  for (const el of document.querySelectorAll(labels)) {
    if (el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1) {
      cut.push('label: ' + el.textContent.trim());
    }
  }
  const ctx = document.createElement('canvas').getContext('2d');
  for (const select of document.querySelectorAll('.widget-dropdown select')) {
    if (select.offsetParent === null || select.selectedIndex < 0) continue;
    ctx.font = getComputedStyle(select).font;
    const text = select.options[select.selectedIndex].text;
    if (ctx.measureText(text).width > select.clientWidth - 20) cut.push('choice: ' + text);
  }
  return cut;
}"""


def cut_labels(page: Any) -> list[str]:
    """Widget labels and dropdown choices the page shows cut off (their text is wider than
    their box), so a learner cannot read them."""
    return page.evaluate(CUT_LABELS_JS)


def change_each_view(page: Any, timeout_s: float = 20) -> list[str]:
    """For every widget view with an HTML output: change one control, wait for the output to change.

    Out: a list of problems (empty when every view updated).
    """
    problems = []
    views = page.locator(".jp-OutputArea-output > .jupyter-widgets.widget-vbox")
    for i in range(views.count()):
        view = views.nth(i)
        output = view.locator(":scope > .widget-html").last
        if not output.count():
            continue
        before = output.inner_text()
        action = _poke(view)
        try:
            page.wait_for_function(
                "([el, old]) => el.innerText !== old",
                arg=[output.element_handle(), before],
                timeout=timeout_s * 1000,
            )
        except Exception:  # Playwright's TimeoutError
            problems.append(f"view {i}: {action} but its output did not change")
    return problems
