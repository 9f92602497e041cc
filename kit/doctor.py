"""Doctor: check this machine and say what to fix, in one call (``kit.doctor()``).

It reports Python, torch and the key packages against ``requirements.lock``, the hardware
(CPU / CUDA / MPS, memory, bf16 support), whether each bundled model resolves offline, whether
this is Colab, and the profile the later stages will use. Every problem comes with its fix.
Run it from a shell with ``python -m kit doctor`` (exit code 1 when something must be fixed).
"""

from __future__ import annotations

import html
import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from kit import __version__
from kit.colab import normalise, read_pins
from kit.models import (
    BUNDLED,
    ModelError,
    best_device,
    cache_dir,
    check_converted,
    package_path,
    pick_dtype,
    pick_generator,
    writable_problem,
)
from kit.profiles import Profile, ProfileError, get_profile, pick_profile

LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements.lock"
KEY_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "gguf",
    "haystack-ai",
    "sentence-transformers-haystack",
    "transformers-haystack",
    "sentence-transformers",
    "datasets",
    "scikit-learn",
    "ipywidgets",
    "ipykernel",
)

READERS: dict[str, tuple[str, str]] = {
    # what reads each file type of your own folder: (importable module, PyPI package)
    ".pdf": ("pypdf", "pypdf"),
    ".docx": ("docx", "python-docx"),
    ".pptx": ("pptx", "python-pptx"),
    ".xlsx": ("openpyxl", "openpyxl"),
}
"""The converters' optional packages, by the file type they read (the doctor checks them).
.md and .html are read without theirs too (plain text, a basic HTML parser)."""

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    """One line of the report: what was checked, the verdict, what was found, how to fix it."""

    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""


@dataclass
class Report:
    """The doctor's findings and the profile it picked."""

    checks: list[Check] = field(default_factory=list)
    profile: Profile | None = None
    profile_reason: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing must be fixed (warnings allowed)."""
        return all(c.status != FAIL for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        """The checks that failed or warned."""
        return [c for c in self.checks if c.status != OK]

    def to_text(self) -> str:
        """The report as plain text, one check per line, fixes indented below."""
        mark = {OK: "[ ok ]", WARN: "[warn]", FAIL: "[FAIL]"}
        lines = [f"rag-ft-kit {__version__} doctor"]
        for c in self.checks:
            lines.append(f"{mark[c.status]} {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"       fix: {c.fix}")
        if self.profile:
            lines.append(f"profile: {self.profile.name} ({self.profile_reason})")
        lines.append("ready." if self.ok else "NOT ready: fix the [FAIL] lines above.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        colour = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}
        rows = "".join(
            f"<tr><td style='color:{colour[c.status]};font-weight:bold'>{c.status}</td>"
            f"<td>{html.escape(c.name)}</td><td>{html.escape(c.detail)}</td>"
            f"<td>{html.escape(c.fix)}</td></tr>"
            for c in self.checks
        )
        verdict = "ready" if self.ok else "NOT ready: fix the red lines"
        prof = (
            f"<p>Profile: <b>{self.profile.name}</b> ({html.escape(self.profile_reason)})</p>"
            if self.profile
            else ""
        )
        return (
            f"<table><tr><th></th><th>check</th><th>found</th><th>fix</th></tr>{rows}</table>"
            f"{prof}<p><b>{verdict}</b></p>"
        )


def run_doctor(profile: str | Profile | None = None) -> Report:
    """Run every check and pick a profile (``profile`` forces one). Out: a :class:`Report`."""
    report = Report()
    report.checks.append(_check_python())
    report.checks.extend(_check_packages())
    report.checks.extend(_check_hardware())
    report.checks.extend(_check_models())
    report.checks.append(_check_cache())
    report.checks.append(_check_readers())
    report.checks.append(_check_where())
    try:
        if profile:
            report.profile, report.profile_reason = get_profile(profile), "asked for"
        else:
            report.profile, report.profile_reason = pick_profile()
    except ImportError as err:  # picking a profile measures the machine with torch
        report.checks.append(Check("profile", FAIL, f"cannot pick one: {err}", "run `make setup`"))
    except ProfileError as err:
        fix = (
            "pass one of smoke, cpu, gpu to --profile"
            if profile
            else f"KIT_PROFILE={os.environ.get('KIT_PROFILE', '')!r}: unset it or fix its value"
        )
        report.checks.append(Check("profile", FAIL, str(err), fix))
    if report.profile is not None:
        name, why = pick_generator(report.profile.generator)
        said = f"{report.profile.name} profile: {name} ({why})"
        report.checks.append(Check("generator", OK, said))
    return report


def _check_readers() -> Check:
    """Which file types of a user's folder can be read here (the converters' packages)."""
    missing = {
        suffix: package
        for suffix, (module, package) in READERS.items()
        if importlib.util.find_spec(module) is None
    }
    if not missing:
        return Check("file types", OK, "md txt pdf html docx pptx csv xlsx can all be read")
    return Check(
        "file types",
        WARN,
        f"cannot read {' '.join(sorted(missing))} files of your own folder (missing: "
        f"{', '.join(sorted(set(missing.values())))})",
        f"pip install {' '.join(sorted(set(missing.values())))} (or `make setup`)",
    )


def locked_versions(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Read ``name==version`` pins from the lock file (:func:`kit.colab.read_pins`); names
    normalised as pip compares them. No lock file: no pins."""
    return read_pins(lock_file.read_text()) if lock_file.is_file() else {}


def _check_python() -> Check:
    version = platform.python_version()
    if sys.version_info[:2] != (3, 11):
        return Check(
            "python",
            WARN,
            f"{version}; the lock file was tested on 3.11",
            "it may work; if an install fails, use Python 3.11 (e.g. `conda env create`)",
        )
    return Check("python", OK, f"{version} at {sys.executable}")


def _check_packages() -> list[Check]:
    pins = locked_versions()
    checks = []
    for name in KEY_PACKAGES:
        want = pins.get(normalise(name))
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            fix = f"pip install {name}=={want}" if want else f"pip install {name}"
            checks.append(Check(name, FAIL, "not installed", f"{fix} (or `make setup`)"))
            continue
        base = have.split("+", 1)[0]
        if want and base != want:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"{have}, the lock pins {want}",
                    f"pip install {name}=={want} if something misbehaves",
                )
            )
        else:
            checks.append(Check(name, OK, have))
    return checks


def _check_hardware() -> list[Check]:
    try:
        import torch  # heavy: the other checks answer without it
    except ImportError as err:  # the packages check names it too; say what it stops here
        fix = "run `make setup` (torch first: pip install torch==2.13.0, then the lock file)"
        return [Check("cpu", FAIL, f"torch cannot be imported ({err}): nothing can run", fix)]

    checks = []
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    checks.append(
        Check(
            "cpu",
            OK,
            f"{cpu}, {os.cpu_count()} cores, torch uses {threads} threads, {_cpu_precision(torch)}",
        )
    )
    mem = _memory_gib()
    if mem is not None:
        status = OK if mem >= 6 else WARN
        fix = "" if status == OK else "close other programs; use the smoke profile"
        checks.append(Check("memory", status, f"{mem:.1f} GiB", fix))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        checks.append(Check("gpu", OK, f"CUDA: {props.name}, {props.total_memory / 2**30:.1f} GiB"))
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        checks.append(Check("gpu", OK, "Apple MPS available (the cpu profile's sizes are used)"))
    else:
        checks.append(Check("gpu", OK, "none: everything runs on the CPU (that is fine)"))
    return checks


def _cpu_precision(torch) -> str:
    """Which precision the kit computes in on this CPU, and why (measured by ``pick_dtype``)."""
    if best_device() != "cpu":
        return "the GPU does the computing (see the gpu line)"
    native = "native bf16" if _cpu_has_bf16(torch) else "bf16 through oneDNN"
    if pick_dtype("auto", "cpu") == "bfloat16":
        return f"computes in bfloat16 ({native}, measured faster than float32)"
    if _cpu_has_bf16(torch):
        return "computes in float32 (native bf16, but measured no faster here)"
    return "computes in float32 (no native bf16)"


def _cpu_has_bf16(torch) -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages * size / 2**30


def _check_models() -> list[Check]:
    checks = []
    for name, model in BUNDLED.items():
        try:
            path = package_path(name)
        except ModelError:
            checks.append(
                Check(
                    f"model {name}", FAIL, f"{model.package} not installed", model.install_command
                )
            )
            continue
        checks.append(Check(f"model {name}", OK, f"offline, from {model.package} ({path.name})"))
    return checks


def _damaged_in_cache(folder: Path) -> tuple[str, str] | None:
    """(what, fix) for the first thing in the cache the next command would trip on: a file
    where the kit keeps a folder, or a converted model whose files are not all there."""
    for sub in ("models", "adapters", "results"):
        if (folder / sub).exists() and not (folder / sub).is_dir():
            return f"{folder / sub} is a file, not a folder", "remove or rename that file"
    models = folder / "models"
    for converted in sorted(models.iterdir()) if models.is_dir() else []:
        aside = converted.name.startswith(".") or ".broken-" in converted.name  # kit's own
        if converted.is_dir() and not aside:
            problem = check_converted(converted)
            if problem:
                return (
                    f"the cached model {converted.name} is damaged ({problem})",
                    f"delete {converted} (the kit converts the model again when it needs it)",
                )
    return None


def _check_cache() -> Check:
    fix = "set KIT_CACHE to a folder you can write to, e.g. export KIT_CACHE=~/.cache/rag-ft-kit"
    try:
        folder = cache_dir()
    except ModelError as err:
        return Check("cache", FAIL, str(err).split(". ")[0], fix)
    problem = writable_problem(folder)
    if problem:
        return Check("cache", FAIL, f"{folder} is not writable ({problem})", fix)
    damaged = _damaged_in_cache(folder)
    if damaged:
        return Check("cache", FAIL, damaged[0], damaged[1])
    free = shutil.disk_usage(folder).free / 2**30
    if free < 2:
        return Check(
            "cache",
            WARN,
            f"{folder}: only {free:.1f} GiB free",
            "free some disk space or set KIT_CACHE to a folder on a bigger disk (2 GiB needed)",
        )
    return Check("cache", OK, f"{folder} ({free:.0f} GiB free)")


def _check_where() -> Check:
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return Check("where", OK, "Google Colab")
    return Check("where", OK, "local machine")
