"""Write the README's option table from the run options' own metadata.

    python docs/build_readme_options.py          # rewrite the table in README.md
    python docs/build_readme_options.py --check  # exit 1 if README.md's table differs

The table lies between ``<!-- options:begin -->`` and ``<!-- options:end -->`` in README.md's "Command line"
section; everything outside the markers is hand-written and kept. Each option's flag, default and meaning come
from :class:`lipsync_core.engine.options.RunOptions` (the same metadata the command line's ``--help`` uses),
grouped as ``--help`` groups them, then the weight roles' ``--<role>_path`` flags. ``tests/test_readme_options.py``
fails while the committed table differs from what this writes.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"
WEIGHTS_GROUP = "weights: a path, Google Drive ID or link, or URL (default: that entry of weights_manifest.json)"


@dataclass(frozen=True)
class Row:
    """One option as the table shows it: its group, the flag with its argument words, default, meaning."""

    group: str
    flag: str
    default: Any
    meaning: str
    choices: tuple | None = None


def option_rows() -> list[Row]:
    """Every option and weight flag, read from the package. The one place that knows the options API."""
    from lipsync_core.engine.catalog import CATALOG
    from lipsync_core.engine.options import option_fields
    from lipsync_core.support.options import choices_of, field_default

    rows = []
    for f in option_fields():
        meta = f.metadata
        metavar = meta.get("metavar")
        words = " ".join(metavar) if isinstance(metavar, tuple) else (metavar or "")
        rows.append(Row(meta["group"], f"--{f.name} {words}".rstrip(), field_default(f), meta["help"],
                        choices_of(f, CATALOG)))
    rows += [Row(WEIGHTS_GROUP, f"--{role.option} PATH", role.default, role.help) for role in CATALOG.roles.values()]
    return rows


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (no column breaks, no tags)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _default(value: Any) -> str:
    if value is None or value is False or value == ():
        return ""
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return "`" + " ".join(str(v) for v in value) + "`"
    return f"`{value}`"


def render_table(rows: list[Row]) -> str:
    """The Markdown between the markers: a heading line and a table per group, in the options' order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    out: list[str] = []
    for group, members in groups.items():
        heading = _cell(group).replace("*", "\\*")  # a literal star, not emphasis
        out += [f"**{heading}**", "", "| option | default | meaning |", "|---|---|---|"]
        for row in members:
            meaning = _cell(row.meaning)
            if row.choices:
                meaning += "; one of " + ", ".join(f"`{c}`" for c in row.choices)
            out.append(f"| `{row.flag}` | {_default(row.default)} | {meaning} |")
        out.append("")
    return "\n".join(out)


def render(readme: str, rows: list[Row] | None = None) -> str:
    """``readme`` with the text between the markers replaced by the table of ``rows`` (default: the package's)."""
    head, sep, rest = readme.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README.md needs the markers {BEGIN} and {END} around the option table")
    return f"{head}{BEGIN}\n{render_table(option_rows() if rows is None else rows)}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the table is out of date")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if new == text:
        print("README.md's option table is up to date")
        return 0
    if args.check:
        print("README.md's option table is out of date: run `python docs/build_readme_options.py`")
        return 1
    README.write_text(new, encoding="utf-8")
    print("README.md's option table written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
