"""``lipsync cache list|prune``: see and bound what the caches hold.

An *entry* is everything one cached thing consists of: a weight file with its record, weights-only copy and
partial download; a download from a user's URL or Drive ID; the weights-only copy of a user's local file; a
file moved aside because it was not the right model; a face track. ``list`` shows each with its size and last
use. ``prune`` removes entries not used for ``--older_than`` days and/or the least recently used ones until
the caches fit in ``--max_size``; moved-aside files (possibly a user's own checkpoint) only with ``--moved``.
An entry a running process holds (a run that fetched it, or a fetch in progress) is never touched. Lock files
stay (removing one under a waiting process would let two fetches run at once).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..support import files, paths
from ..support.errors import LipsyncError
from ..support.locks import file_lock_nowait

KINDS = ("weight", "source", "local", "moved", "partial", "track", "leftover")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)
_DERIVED = (".json", ".lock", ".inuse", ".part", ".src", ".tmp")


@dataclass
class Entry:
    """One cached thing: its files, total size and last use."""

    kind: str
    name: str
    files: list[Path]
    last_use: float
    locks: list[Path] = field(default_factory=list)  # taken exclusively (without waiting) before removal

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files if p.exists())


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GB``, ``123`` (bytes) -> bytes."""
    m = _SIZE.match(text)
    if m is None:
        raise LipsyncError(f"--max_size {text!r}: give a size such as 500M, 2G or 1.5GB")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


def _mtime(*candidates: Path) -> float:
    times = [p.stat().st_mtime for p in candidates if p.exists()]
    return max(times) if times else 0.0


def _existing(*candidates: Path) -> list[Path]:
    return [p for p in candidates if p.is_file()]


def _weight_entries(folder: Path, kind: str, label: str = "") -> list[Entry]:
    entries = []
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not p.is_file() or p.name.endswith(_DERIVED) or p.name.endswith(".stripped.pth") or p.name.startswith("."):
            continue
        moved = ".moved-" in p.name
        group = [p] if moved else _existing(p, p.with_name(p.name + ".json"), p.with_name(f"{p.stem}.stripped.pth"))
        lock, inuse = p.with_name(p.name + ".lock"), p.with_name(p.name + ".inuse")
        last = _mtime(p) if moved else _mtime(lock) or _mtime(*group)
        entries.append(Entry("moved" if moved else kind, f"{label}{p.name}", group, last,
                             [] if moved else [lock, inuse]))
    for src in sorted(folder.glob("*.part.src")) if folder.is_dir() else []:
        target = src.with_name(src.name[: -len(".part.src")])
        if target.exists():
            parts = _existing(target.with_name(target.name + ".part"), src)
        else:
            parts = _existing(target.with_name(target.name + ".part"), src,
                              *folder.glob(f"{target.name}.part*.part"))
        entries.append(Entry("partial", f"{label}{target.name} (interrupted download)", parts, _mtime(*parts),
                             [target.with_name(target.name + ".lock")]))
    return entries


def inventory(root: Path) -> list[Entry]:
    """Every entry under the cache ``root`` (``<root>/weights``, ``<root>/tracks``)."""
    weights = root / "weights"
    entries = _weight_entries(weights, "weight")
    for folder in sorted((weights / "sources").glob("*")) if (weights / "sources").is_dir() else []:
        entries += _weight_entries(folder, "source", f"{folder.name}/")
    local = weights / "local"
    for rec in sorted(local.glob("*.json")) if local.is_dir() else []:
        try:
            name = json.loads(rec.read_text(encoding="utf-8")).get("source", rec.stem)
        except (OSError, ValueError, AttributeError):
            name = rec.stem
        group = _existing(rec, rec.with_name(f"{rec.stem}.stripped.pth"))
        entries.append(Entry("local", f"copy of {name}", group, _mtime(rec), [rec.with_name(f"{rec.stem}.inuse")]))
    tracks = root / "tracks"
    for npz in sorted(tracks.glob("*.npz")) if tracks.is_dir() else []:
        meta = npz.with_suffix(".json")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            name = f"{info.get('video') or npz.stem} ({info.get('frames', '?')} frames)"
        except (OSError, ValueError, AttributeError):
            name = npz.stem
        entries.append(Entry("track", name, _existing(npz, meta), _mtime(npz)))
    for folder in (weights, local, tracks):
        for p in sorted(folder.glob(".*.tmp")) if folder.is_dir() else []:
            if files.owner_gone(p.name):
                entries.append(Entry("leftover", f"{p.name} (left by a killed run)", [p], _mtime(p)))
    return entries


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _age(t: float) -> str:
    if not t:
        return "?"
    days = (time.time() - t) / 86400
    return f"{days * 24:.1f} h ago" if days < 1 else f"{days:.1f} d ago"


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def list_entries(root: Path) -> int:
    entries = inventory(root)
    print(f"cache: {root}")
    if not entries:
        print("(empty)")
        return 0
    rows = [("kind", "size", "last use", "what")]
    rows += [(e.kind, _human(e.size), _age(e.last_use), e.name) for e in entries]
    _print_table(rows)
    print(f"total: {_human(sum(e.size for e in entries))} in {len(entries)} entries")
    return 0


def choose(entries: list[Entry], *, older_than_days: float | None, max_size: int | None, moved: bool,
           now: float | None = None) -> list[Entry]:
    """What ``prune`` removes: entries unused for ``older_than_days``, then the least recently used until the
    rest fits in ``max_size``; moved-aside files only when ``moved`` (and then all of them unless an age is given)."""
    now = time.time() if now is None else now
    eligible = [e for e in entries if e.kind != "moved" or moved]
    chosen: list[Entry] = []
    if older_than_days is not None:
        chosen = [e for e in eligible if now - e.last_use > older_than_days * 86400]
    elif moved:
        chosen = [e for e in eligible if e.kind == "moved"]
    if max_size is not None:
        total = sum(e.size for e in entries if e not in chosen)
        for e in sorted((e for e in eligible if e not in chosen), key=lambda e: e.last_use):
            if total <= max_size:
                break
            chosen.append(e)
            total -= e.size
    return chosen


def _remove(entry: Entry) -> str | None:
    """Remove ``entry`` unless a running process holds it; None when removed, else why not."""
    held = []
    try:
        for lock in entry.locks:
            handle = file_lock_nowait(lock)
            if handle is None:
                return "a running process is using it"
            held.append(handle)
        for p in entry.files:
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:
                return f"cannot remove {p} ({exc.strerror})"
        return None
    finally:
        for handle in held:
            handle.close()


def prune(root: Path, *, older_than_days: float | None, max_size: int | None, moved: bool, dry_run: bool) -> int:
    entries = inventory(root)
    chosen = choose(entries, older_than_days=older_than_days, max_size=max_size, moved=moved)
    freed, skipped = 0, 0
    for e in chosen:
        size = e.size
        if dry_run:
            print(f"would remove {e.kind} {e.name} ({_human(size)})")
            freed += size
        elif (why := _remove(e)) is None:
            print(f"removed {e.kind} {e.name} ({_human(size)})")
            freed += size
        else:
            print(f"kept {e.kind} {e.name}: {why}")
            skipped += 1
    verb = "would free" if dry_run else "freed"
    print(f"{verb} {_human(freed)}" + (f"; {skipped} kept" if skipped else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lipsync cache", description="See and bound the caches (weights, face tracks; "
                                "root: LIPSYNC_CACHE, else $XDG_CACHE_HOME/lipsync, else ~/.cache/lipsync).")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="every cached entry with its size and last use")
    pr = sub.add_parser("prune", help="remove old or least recently used entries (never one a running process holds)")
    for c in (ls, pr):
        c.add_argument("--cache_dir", help="cache root instead of the default")
    pr.add_argument("--older_than", type=float, metavar="DAYS", help="remove entries not used for this many days")
    pr.add_argument("--max_size", metavar="SIZE", help="then remove the least recently used until the caches fit "
                    "(e.g. 2G)")
    pr.add_argument("--moved", action="store_true", help="include files moved aside (not the right model; possibly "
                    "your own copies)")
    pr.add_argument("--dry_run", action="store_true", help="only say what would be removed")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync cache <argv>``; returns the exit status."""
    args = build_parser().parse_args(list(argv))
    try:
        root = paths.cache_dir(args.cache_dir)
        if args.command == "list":
            return list_entries(root)
        if args.older_than is not None and (not math.isfinite(args.older_than) or args.older_than < 0):
            raise LipsyncError("--older_than must be a number of days >= 0")
        max_size = parse_size(args.max_size) if args.max_size is not None else None
        if args.older_than is None and max_size is None and not args.moved:
            raise LipsyncError("say what to prune: --older_than DAYS, --max_size SIZE and/or --moved")
        return prune(root, older_than_days=args.older_than, max_size=max_size, moved=args.moved,
                     dry_run=args.dry_run)
    except LipsyncError as exc:
        print(f"lipsync: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
