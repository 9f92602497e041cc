"""notebooks/catalog.json lists every notebook with its level and time, and matches them."""

from __future__ import annotations

import json
from pathlib import Path

from kit.colab_cells import TAG

ROOT = Path(__file__).resolve().parent.parent
CATALOG = json.loads((ROOT / "notebooks" / "catalog.json").read_text())["notebooks"]
LEVELS = {"beginner", "intermediate", "advanced"}


def title(path: Path) -> str:
    """The notebook's title: its first markdown cell's ``# heading`` (the Colab badge aside)."""
    nb = json.loads(path.read_text())
    first = next(
        c
        for c in nb["cells"]
        if c["cell_type"] == "markdown" and TAG not in c.get("metadata", {}).get("tags", [])
    )
    heading = "".join(first["source"]).strip().splitlines()[0]
    assert heading.startswith("# "), f"{path.name}: the first cell must start with a # title"
    return heading[2:].strip()


def test_catalog_lists_exactly_the_notebooks():
    on_disk = {
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/*.ipynb")]
    }
    listed = [entry["path"] for entry in CATALOG]
    assert len(listed) == len(set(listed)), "a notebook is listed twice"
    assert set(listed) == on_disk


def test_entries_match_their_notebooks_and_the_readme():
    readme = (ROOT / "README.md").read_text()
    for entry in CATALOG:
        path = ROOT / entry["path"]
        assert title(path) == entry["title"], entry["path"]
        assert entry["level"] in LEVELS and 1 <= entry["minutes"] <= 180
        assert entry["learn"].strip()
        for need in entry["needs"]:
            assert need in {e["path"] for e in CATALOG}, f"{entry['path']} needs unknown {need}"
        row = next((line for line in readme.splitlines() if f"`{entry['path']}`" in line), "")
        assert row, f"README's notebook table lacks {entry['path']}"
        assert entry["level"] in row and f"{entry['minutes']} min" in row, row
