"""Report: one self-contained HTML file (the main job's output), built section by section.

Sections are text, tables (lists of row dicts or pandas DataFrames) and matplotlib figures
(embedded as base64 PNG), so the file opens anywhere with no other files beside it.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import __version__
from kit.inputs import InputError

GENERATOR = "<meta name='generator' content='rag-ft-kit'>"
"""What marks a report the kit wrote (older reports: their "kit X, profile Y" line)."""

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em} .wide{overflow-x:auto}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} pre{background:#f6f8fa;padding:1em;overflow:auto}
"""


@dataclass
class Report:
    """An HTML report under construction: add sections, then :meth:`write`."""

    title: str
    profile: str = ""
    sections: list[str] = field(default_factory=list)

    def add_text(self, heading: str, text: str, preformatted: bool = True) -> None:
        """Add a section of text (kept as-is in a <pre> block when ``preformatted``)."""
        body = f"<pre>{html.escape(text)}</pre>" if preformatted else f"<p>{html.escape(text)}</p>"
        self.sections.append(f"<h2>{html.escape(heading)}</h2>{body}")

    def add_lead(self, heading: str, lines: list[str]) -> None:
        """Put a list of plain sentences at the top of the report (the run's verdict); a line
        that starts with two spaces is a sub-item of the line before it."""
        items: list[str] = []
        for line in lines:
            if line.startswith("  ") and items:
                items[-1] += f"<li>{html.escape(line.strip())}</li>"
            else:
                items.append(f"{html.escape(line)}<ul>")
        body = "".join(f"<li>{item}</ul></li>".replace("<ul></ul>", "") for item in items)
        self.sections.insert(0, f"<h2>{html.escape(heading)}</h2><ul>{body}</ul>")

    def add_html(self, heading: str, fragment: str, note: str = "") -> None:
        """Add a section of ready HTML (e.g. a widget's static view); it must be trusted HTML."""
        extra = f"<p>{html.escape(note)}</p>" if note else ""
        self.sections.append(f"<h2>{html.escape(heading)}</h2>{extra}{fragment}")

    def add_table(self, heading: str, rows: Any, note: str = "") -> None:
        """Add a table from a list of row dicts or a pandas DataFrame. A DataFrame's missing
        values show "–" and its floats two decimals (what a few dozen questions justify); a row
        dict's cells are shown as they are (``str(value)``): round them first."""
        if hasattr(rows, "to_html"):
            table = rows.to_html(
                index=False, escape=True, na_rep="–", float_format=lambda x: f"{x:.2f}"
            )
        else:
            rows = list(rows)
            cols = list(rows[0]) if rows else []
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
            body = "".join(
                "<tr>"
                + "".join(f"<td>{html.escape(_cell(r.get(c, '')))}</td>" for c in cols)
                + "</tr>"
                for r in rows
            )
            table = f"<table><tr>{head}</tr>{body}</table>"
        extra = f"<p>{html.escape(note)}</p>" if note else ""
        wrapped = f"<div class='wide'>{table}</div>"  # a wide table scrolls, the page does not
        self.sections.append(f"<h2>{html.escape(heading)}</h2>{extra}{wrapped}")

    def add_figure(self, heading: str, figure: Any, note: str = "") -> None:
        """Add a matplotlib figure, embedded as a PNG."""
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        extra = f"<p>{html.escape(note)}</p>" if note else ""
        self.sections.append(
            f"<h2>{html.escape(heading)}</h2>{extra}<img alt='{html.escape(heading)}' "
            f"src='data:image/png;base64,{data}'>"
        )

    def to_html(self) -> str:
        """The whole report as one HTML string."""
        stamp = time.strftime("%Y-%m-%d %H:%M")
        meta = f"kit {__version__}, profile {self.profile or '?'}, {stamp}"
        return (
            f"<!doctype html><html><head><meta charset='utf-8'>{GENERATOR}"
            f"<title>{html.escape(self.title)}"
            f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"<p>{html.escape(meta)}</p>{''.join(self.sections)}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report (atomically: a temporary file renamed into place); return its path.
        A file at ``path`` that the kit did not write is kept: InputError says so."""
        path = may_write(Path(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(self.to_html(), encoding="utf-8")
        tmp.replace(path)
        return path.resolve()


def may_write(path: Path) -> Path:
    """``path`` if the kit may write its report there (nothing there, or a report of the kit),
    else InputError: a file the kit did not write is kept. Checked again before any work."""
    if path.is_file() and not written_by_kit(path):
        raise InputError(
            f"{path} is not a report the kit wrote, so it is kept: choose another --out "
            "folder, or move that file"
        )
    return path


def written_by_kit(path: Path) -> bool:
    """True when the HTML file at ``path`` is a report of the kit (its start says so)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    return GENERATOR in head or re.search(r"<p>kit [^<,]+, profile ", head) is not None


def _cell(value: Any) -> str:
    """A table cell's text: missing values (None, NaN) as "–"."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return str(value)
