"""A fresh learner: clean clone, the README's command only, and the time to a first answer.

Clones the committed state of this repository into a temporary folder and runs ``make demo``
there exactly as the README says (smoke profile, an empty model cache), so the two-command
promise is tested from scratch at every commit: a new .venv, the pinned install, the model
conversion, the whole walk-through and its report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fresh_clone_make_demo(tmp_path, report_figure):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("this test needs git and a git checkout of the kit")
    clone = tmp_path / "kit"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST", "KIT_"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env.update({"KIT_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "CI": "true"})
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "demo", "PROFILE=smoke"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first_answer = None
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if first_answer is None and re.match(r"\s+smollm2-135m-instruct: '", line):
            first_answer = time.perf_counter() - start
    code = proc.wait(timeout=3000)
    total = time.perf_counter() - start
    log = "".join(lines[-60:])
    assert code == 0, f"make demo failed in a fresh clone:\n{log}"
    assert first_answer is not None, log
    report = clone / "outputs" / "report.html"
    assert report.is_file() and "smollm2-135m-instruct" in report.read_text()
    assert (clone / ".venv" / "bin" / "python").exists()
    report_figure("fresh clone: time to first answer", f"{first_answer:.0f} s")
    report_figure("fresh clone: make demo (smoke) total", f"{total:.0f} s")
