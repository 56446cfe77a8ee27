"""``lipsync weights list|fetch|verify``: see and manage the cached model files.

``list`` shows, per variant, each role's weight and whether it is verified, cached (not hash-checked
yet), accepted although it differs from the manifest, damaged, partially downloaded or missing.
``fetch`` downloads what variants (or named weights) need, ``--source ID=SOURCE`` giving a local file, URL
or Google Drive ID/link for one of them.
``verify`` re-checks every cached file by sha256 and by loading it: one that is not the manifest's file is moved
aside (deleted only when it is this package's own download and no longer loads).
Expected errors print one line to stderr and return 1.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..engine.catalog import CATALOG
from ..engine.options import SCORERS
from ..support.errors import LipsyncError
from ..weights import store as weights
from ..weights.manifest import Manifest, load_manifest


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lipsync weights", description="Manage the model weight files "
                                "(cache: LIPSYNC_CACHE, else $XDG_CACHE_HOME/lipsync, else ~/.cache/lipsync).")
    sub = p.add_subparsers(dest="command", required=True)
    commands = {
        "list": sub.add_parser("list", help="each variant's weights and their cache state"),
        "fetch": sub.add_parser("fetch", help="download and verify weights"),
        "verify": sub.add_parser("verify", help="re-check every cached weight by sha256 and by loading it"),
    }
    for c in commands.values():
        c.add_argument("--cache_dir", help="cache root instead of the default (weights go to <root>/weights)")
    f = commands["fetch"]
    f.add_argument("ids", nargs="*", metavar="WEIGHT", help="weight ids to fetch (see `lipsync weights list`)")
    f.add_argument("--variant", action="append", default=[], help="fetch every weight this variant uses (repeatable)")
    f.add_argument("--source", action="append", default=[], metavar="ID=SOURCE",
                   help="where to get weight (or role) ID: a local file, URL, Google Drive ID or share link")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync weights <argv>``; returns the exit status."""
    args = build_parser().parse_args(list(argv))
    try:
        manifest = load_manifest()
        if args.command == "list":
            return _list(manifest, args.cache_dir)
        if args.command == "fetch":
            return _fetch(manifest, args)
        return _verify(manifest, args.cache_dir)
    except LipsyncError as exc:
        print(f"lipsync: error: {exc}", file=sys.stderr)
        return 1


def _validator(arch: str, manifest: Manifest) -> Callable[[Path], None]:
    from ..models import validator

    return validator(arch, lambda other: CATALOG.flag_for_arch(other, manifest))


def _list(manifest: Manifest, cache_dir: str | None) -> int:
    print(f"cache: {weights.weights_dir(cache_dir)}")
    rows = [("variant", "role", "weight", "size", "state")]
    table = [(variant, role, wid) for variant in CATALOG.variants
             for role, wid in CATALOG.variant_weights(variant).items()]
    # The scorers (--score, lipsync score) belong to no variant: any run may use them.
    table += [("(scoring)", r, CATALOG.roles[r].default) for r in SCORERS
              if r in CATALOG.roles and CATALOG.roles[r].default in manifest.weights]
    for variant, role, wid in table:
        entry = manifest.entry(wid)
        size = f"{entry.size / 1e6:.1f} MB" if entry.size else "?"
        rows.append((variant, role, wid, size, weights.status(wid, cache_dir=cache_dir, manifest=manifest)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


def _fetch(manifest: Manifest, args: argparse.Namespace) -> int:
    roles: dict[str, str] = {}
    wanted: list[str] = []
    for variant in args.variant:
        for role, wid in CATALOG.variant_weights(variant).items():
            roles.setdefault(role, wid)
            wanted.append(wid)
    for wid in args.ids:
        wanted.append(manifest.entry(wid).id)
    sources: dict[str, str] = {}
    for item in args.source:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise LipsyncError(f"--source {item!r}: expected ID=SOURCE, e.g. wav2lip_gan=/path/to/wav2lip_gan.pth")
        wid = roles.get(key, key)
        manifest.entry(wid)  # unknown ids fail here, naming the known ones
        sources[wid] = value
        wanted.append(wid)
    if not wanted:
        raise LipsyncError("name what to fetch: --variant NAME or weight ids (see `lipsync weights list`)")
    for wid in dict.fromkeys(wanted):
        entry = manifest.entry(wid)
        path = weights.fetch(wid, source=sources.get(wid), cache_dir=args.cache_dir, manifest=manifest,
                             validate=_validator(entry.arch, manifest), progress=not args.quiet)
        print(f"{wid}: {path}")
    return 0


def _verify(manifest: Manifest, cache_dir: str | None) -> int:
    damaged = 0
    for wid, entry in manifest.weights.items():
        try:
            ok = weights.verify(wid, cache_dir=cache_dir, manifest=manifest, validate=_validator(entry.arch, manifest))
        except LipsyncError as exc:
            damaged += 1
            print(f"{wid}: DAMAGED: {exc}")
            continue
        print(f"{wid}: {'ok' if ok else 'not cached'}")
    if damaged:
        print(f"lipsync: error: {damaged} cached weight file(s) were not the manifest's and were moved aside or "
              "deleted (see above); fetch them again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    sys.exit(main(sys.argv[1:]))
