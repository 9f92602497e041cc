"""Workshop: prepare the artefacts every notebook can reuse, and check a machine is ready.

In a 90-minute workshop nobody can wait for every fine-tune. The instructor (or each machine,
before class) runs::

    python -m kit workshop prepare [--profile cpu]    # or: make workshop

which builds and verifies, in the kit's cache (``KIT_CACHE``):

- the bundled generator converted from its GGUF file;
- the house-style adapter (``adapters/style-<profile>``) and the RAFT adapter
  (``adapters/raft-<profile>``), trained exactly as notebooks 02 and 03 train them;
- the cached comparison of notebook 04 (every system, every experiment);
- ``workshop-<profile>.json``: what was built, for which kit version and data, and a
  reproduction check (the prebuilt adapter, reloaded, gives the stored answers again).

Notebooks 02 and 03 then offer "train it yourself" or "load the prebuilt one"
(``USE_PREBUILT = True``): ``train_adapter(..., reuse=True)`` returns the prebuilt adapter only if
it was trained with the very same settings and data, so both paths give the same downstream
results. Each attendee runs ``python -m kit workshop check``: one screen, ready or what to do.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

from kit import __version__
from kit.adapters import check_adapter, load_adapter, raft_dir, read_adapter_info, style_dir
from kit.doctor import FAIL, OK, WARN, Check, Report, run_doctor
from kit.models import DEFAULT_GENERATOR, cache_dir, pick_generator, resolve_model
from kit.profiles import Profile, get_profile, resolve_profile

REPRODUCE_QUESTIONS = 3  # grid questions re-answered by the reloaded adapter in the check


def manifest_path(profile: str | Profile | None = None) -> Path:
    """The record ``prepare`` writes for ``profile``."""
    return cache_dir() / f"workshop-{resolve_profile(profile).name}.json"


def prepare(profile: str | Profile | None = None, log: Any = print) -> dict[str, Any]:
    """Build every artefact for ``profile``, verify it, write and return the manifest.

    Already-built artefacts with the same settings are reused (so running it twice is fast);
    anything stale (another kit version, other data, other settings) is rebuilt. Raises
    RuntimeError when the machine is not ready or when a reloaded adapter does not reproduce
    its stored answers.
    """
    # heavy: kit.compare loads Haystack, pandas and the training stack (seconds)
    from kit.compare import comparison_key, data_fingerprint, results_path, run_comparison

    prof = resolve_profile(profile)
    start = time.perf_counter()
    doctor = run_doctor(prof.name)
    if not doctor.ok:
        raise RuntimeError("This machine is not ready:\n" + doctor.to_text())
    generator, why = pick_generator(prof.generator)
    log(f"1/3 the generator: {generator} ({why}): {resolve_model(generator)}")
    log(f"2/3 adapters and the comparison ({prof.name} profile; reused when already built)")
    result = run_comparison(prof, log=lambda m: log(f"    {m}"))
    log("3/3 verify: reload the prebuilt adapter and reproduce stored answers")
    reproduced = reproduce(prof)
    if not reproduced["ok"]:
        raise RuntimeError(
            "The prebuilt style adapter does not reproduce its stored answers: "
            f"{reproduced['mismatches']}. Delete {style_dir(prof)} and run prepare again."
        )
    manifest = {
        "kit_version": __version__,
        "profile": prof.name,
        "generator": generator,
        "data": data_fingerprint(),
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.perf_counter() - start, 1),
        "artefacts": {
            "style_adapter": str(style_dir(prof) / "adapter"),
            "raft_adapter": str(raft_dir(prof) / "adapter"),
            "comparison": str(results_path(prof)),
        },
        "comparison_key": comparison_key(prof),
        "summary": json.loads(result.summary.to_json(orient="records")),
        "reproduced": reproduced,
    }
    path = manifest_path(prof)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(path)
    log(f"ready: {path} ({manifest['seconds']:.0f} s)")
    return manifest


def reproduce(profile: str | Profile | None = None, n: int = REPRODUCE_QUESTIONS) -> dict[str, Any]:
    """Reload the prebuilt style adapter, answer the grid's questions again, compare ``n``.

    The questions go through the same batched path as in the grid (same batches, so the same
    padding). Out: ``{"ok": bool, "questions": n, "mismatches": [question, ...]}``; ok means
    every compared answer is the text stored in the cached comparison (greedy decoding: same
    weights, same text).
    """
    from kit.compare import load_cached_results, plain_system  # heavy: Haystack and pandas

    prof = resolve_profile(profile)
    result = load_cached_results(prof)
    if result is None:
        return {"ok": False, "questions": 0, "mismatches": ["no cached comparison"]}
    stored = result.answers["finetuned"]
    model, tokenizer = load_adapter(style_dir(prof) / "adapter", dtype=prof.dtype)
    system = plain_system(model.merge_and_unload(), tokenizer, "finetuned", prof)
    again = system.answer_batch([a.question for a in stored])  # exactly as the grid asked
    stored, again = stored[:n], again[:n]
    mismatches = [a.question for a, b in zip(stored, again, strict=True) if a.text != b.text]
    return {"ok": not mismatches, "questions": len(stored), "mismatches": mismatches}


def check(profile: str | Profile | None = None) -> Report:
    """The attendee's readiness check: the doctor's checks (disk space included) plus the
    notebook stack and the workshop's artefacts.

    Out: a doctor :class:`~kit.doctor.Report` (``print(report)`` or display it in a notebook);
    ``report.ok`` is False when something must be fixed before class, and each problem says how.
    """
    report = run_doctor(get_profile(profile) if profile else None)  # yours, changes and all
    prof = report.profile or resolve_profile(profile)
    report.checks.append(_check_notebook_stack())
    report.checks.extend(_check_artefacts(prof))
    return report


def _check_notebook_stack() -> Check:
    needed = ("jupyterlab", "ipywidgets", "nbclient")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            "notebooks",
            FAIL,
            f"missing {', '.join(missing)}",
            "run `make setup` (or pip install -r requirements.lock)",
        )
    return Check("notebooks", OK, "JupyterLab and ipywidgets are installed")


def _check_artefacts(prof: Profile) -> list[Check]:
    """Are the prebuilt artefacts there, and built for this kit version and data?"""
    # heavy: Haystack and pandas, needed only once a workshop was prepared on this machine
    from kit.compare import data_fingerprint, load_cached_results, results_path

    fix = f"run `python -m kit workshop prepare --profile {prof.name}` (or copy the prepared cache)"
    path = manifest_path(prof)
    if not path.is_file():
        return [
            Check(
                "workshop artefacts",
                WARN,
                f"none prepared for the {prof.name} profile: notebooks will train everything "
                "themselves (minutes each)",
                fix,
            )
        ]
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # half-copied from a USB stick, say
        return [Check("workshop artefacts", FAIL, f"{path} cannot be read ({err})", fix)]
    checks = []
    stale = [
        what
        for what, now in (("kit version", __version__), ("data", data_fingerprint()))
        if manifest.get("kit_version" if what == "kit version" else "data") != now
    ]
    if stale:
        return [
            Check("workshop artefacts", FAIL, f"prepared for another {' and '.join(stale)}", fix)
        ]
    generator, why = pick_generator(prof.generator)
    prepared = manifest.get("generator", DEFAULT_GENERATOR)
    if prepared != generator:
        said = f"prepared with {prepared}; this machine loads {generator} ({why})"
        return [Check("workshop artefacts", FAIL, said, f"copy the hub cache too, or {fix}")]
    for name, folder in (("style adapter", style_dir(prof)), ("RAFT adapter", raft_dir(prof))):
        problem = check_adapter(folder / "adapter")
        checks.append(Check(name, FAIL, problem, fix) if problem else Check(name, OK, str(folder)))
    if not any(c.status == FAIL for c in checks):
        problem = _raft_start_problem(prof)
        if problem:
            checks[-1] = Check("RAFT adapter", FAIL, problem, fix)
    cached = load_cached_results(prof)
    checks.append(
        Check("comparison", OK, f"cached in {results_path(prof)}")
        if cached is not None
        else Check("comparison", FAIL, "missing or stale", fix)
    )
    return checks


def _raft_start_problem(prof: Profile) -> str | None:
    """Why the prebuilt RAFT adapter would not be reused (None if it would): notebook 03 and
    the comparison train RAFT on top of the style adapter, so it must have started from this
    very style adapter (:func:`kit.finetune.adapter_identity`)."""
    from kit.finetune import adapter_identity  # heavy: the training stack

    settings = read_adapter_info(raft_dir(prof) / "adapter").get("info", {}).get("settings", {})
    started = settings.get("init_adapter")
    if started is None:
        return "trained from the base model, not from the style adapter (an older kit)"
    if started != adapter_identity(style_dir(prof) / "adapter"):
        return "trained on top of another style adapter than the one prepared here"
    return None
