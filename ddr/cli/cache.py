"""``ddr cache``: ``verify`` every entry against its checksums (:mod:`ddr.store.verify`); ``info``,
``ls``, ``prune`` and ``gc`` to see and trim what is cached (:mod:`ddr.store.inventory`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def cmd_cache_verify(args: argparse.Namespace) -> int:
    from ddr.store.cache import cache_root
    from ddr.store.verify import verify_cache

    root = cache_root()
    reports = verify_cache(root, move=args.quarantine)
    bad = [r for r in reports if r.status != "ok"]
    if args.json:
        print(json.dumps({"cache": str(root), "entries": len(reports), "ok": len(reports) - len(bad),
                          "problems": [r.to_dict() for r in bad]}, indent=2))
        return 1 if bad else 0
    counts: dict[str, dict[str, int]] = {}
    for r in reports:
        counts.setdefault(r.namespace, {}).setdefault(r.status, 0)
        counts[r.namespace][r.status] += 1
    print(f"cache: {root}")
    for namespace, by_status in sorted(counts.items()):
        print(f"  {namespace:<18} " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())))
    for r in bad:
        where = f"; moved to {r.moved_to}" if r.moved_to else ""
        print(f"{r.status.upper()} {r.entry}: {r.problem}{where}")
    if not reports:
        print("the cache holds no entries")
    elif not bad:
        print(f"all {len(reports)} entries match their checksums")
    elif not args.quarantine:
        print(f"{len(bad)} of {len(reports)} entries failed; a run moves each aside and rebuilds it when it needs it, "
              "or move them all now with `ddr cache verify --quarantine`")
    else:
        print(f"{len(bad)} of {len(reports)} entries failed and were moved to {root / 'quarantine'}; runs rebuild them")
    return 1 if bad else 0


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    from ddr.store.inventory import parse_age

    older = getattr(args, "older_than", None)
    return {"kinds": tuple(args.kind or ()), "method": getattr(args, "method", None),
            "dataset": getattr(args, "dataset", None), "protocol": getattr(args, "protocol", None),
            "older_than": parse_age(older) if older is not None else None}


def _usage(filters: dict[str, Any], root: Any) -> Any:
    """What the results database's runs say each entry served, when a filter needs it (jobs and
    distilled sets do not record the protocol of the runs that used them)."""
    if not any(filters.get(k) for k in ("method", "dataset", "protocol")):
        return None
    import sqlite3

    from ddr.errors import DdrError
    from ddr.store.inventory import RESULTS_DB_FILES, record_usage
    from ddr.store.results import ResultsDB

    db_file = root / RESULTS_DB_FILES[0]
    if not db_file.is_file():
        return None
    try:
        with ResultsDB(db_file) as db:
            dirs = [row["record_dir"] for row in db.query() if row.get("record_dir")]
    except (DdrError, sqlite3.Error) as exc:
        print(f"ddr: warning: cannot read the results database ({exc}); filters match only what entries' own "
              "metadata names", file=sys.stderr)
        return None
    return record_usage(dirs)


def _describe(entry: Any) -> str:
    d = entry.describes
    parts = [str(d[k]) for k in ("method", "dataset") if d.get(k) is not None]
    if d.get("ipc") is not None:
        parts.append(f"ipc{d['ipc']}")
    parts += [f"{k} {d[k]}" for k in ("protocol", "role", "arch") if d.get(k) is not None]
    return " ".join(parts) or "-"


def cmd_cache_info(args: argparse.Namespace) -> int:
    """Entries and bytes per kind, and the results database's size."""
    from ddr.store.inventory import KINDS, format_size, results_db_size, scan, summary
    from ddr.store.paths import cache_dir

    root = cache_dir()
    entries = scan(root)
    counts = summary(entries)
    db = results_db_size(root)
    if args.json:
        print(json.dumps({"cache": str(root), "kinds": counts, "total_bytes": sum(e.size for e in entries),
                          "results_db_bytes": db}, indent=2))
        return 0
    print(f"cache: {root}")
    for kind in KINDS:
        c = counts[kind]
        print(f"  {kind:<12} {c['entries']:>6} entries  {format_size(c['bytes']):>10}")
    print(f"  {'total':<12} {len(entries):>6} entries  {format_size(sum(e.size for e in entries)):>10}")
    print(f"results database: {format_size(db) if db is not None else 'none yet'}"
          " (kept by prune and gc; `ddr results` reads it)")
    return 0


def cmd_cache_ls(args: argparse.Namespace) -> int:
    """One line per entry: kind, size, age, what it describes, path."""
    import time

    from ddr.store.inventory import format_age, format_size, scan, select
    from ddr.store.paths import cache_dir

    now = time.time()
    root = cache_dir()
    filters = _filters(args)
    entries = select(scan(root), now=now, usage=_usage(filters, root), **filters)
    if args.json:
        print(json.dumps([e.to_dict(now) for e in entries], indent=2))
        return 0
    if not entries:
        print("no cache entries match")
        return 0
    print(f"{'KIND':<11} {'SIZE':>10} {'AGE':>5}  {'DESCRIBES':<32} PATH")
    for e in entries:
        print(f"{e.kind:<11} {format_size(e.size):>10} {format_age(e.age(now)):>5}  {_describe(e):<32} {e.path}")
    print(f"{len(entries)} entries, {format_size(sum(e.size for e in entries))}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    """Remove the entries matching the filters (at least one filter is required)."""
    import time

    from ddr.errors import ConfigError
    from ddr.store.inventory import format_age, format_size, is_locked, remove_entry, remove_results_db, scan, select
    from ddr.store.paths import cache_dir

    filters = _filters(args)
    only_db = not any(filters.values()) and not args.all
    if only_db and not args.include_results_db:
        raise ConfigError("ddr cache prune needs a filter (--older-than, --kind, --method, --dataset, --protocol) "
                          "or --all; `ddr cache ls` with the same filters shows what would go")
    now = time.time()
    root = cache_dir()
    entries = [] if only_db else select(scan(root), now=now, usage=_usage(filters, root), **filters)
    verb = "would remove" if args.dry_run else "removed"
    removed, skipped, freed = 0, 0, 0
    for e in entries:
        ok = not is_locked(e.path) if args.dry_run else remove_entry(e, root)
        if ok:
            removed += 1
            freed += e.size
            print(f"{verb} {e.kind:<11} {format_size(e.size):>10} {format_age(e.age(now)):>5}  {e.path}")
        else:
            skipped += 1
            print(f"kept   {e.kind:<11} {e.path}: another ddr process holds its lock (in use)")
    if args.include_results_db:
        from ddr.store.inventory import RESULTS_DB_FILES

        db_files = [root / n for n in RESULTS_DB_FILES if (root / n).is_file()]
        if not args.dry_run:
            db_files = remove_results_db(root)
        for f in db_files:
            print(f"{verb} results database file {f}")
    print(f"{verb} {removed} entries ({format_size(freed)})" + (f"; kept {skipped} in use" if skipped else "")
          + ("" if args.include_results_db else "; the results database is kept (--include-results-db removes it)"))
    return 0


def cmd_cache_gc(args: argparse.Namespace) -> int:
    """Remove what nothing references: temporaries of killed writes, quarantine, orphaned locks."""
    from ddr.store.inventory import format_size, garbage, remove_garbage
    from ddr.store.paths import cache_dir

    root = cache_dir()
    items = garbage(root)
    verb = "would remove" if args.dry_run else "removed"
    done, freed, kept = 0, 0, 0
    for item in items:
        if args.dry_run or remove_garbage(item, root):
            done += 1
            freed += item.size
            print(f"{verb} {item.what:<13} {format_size(item.size):>10}  {item.path}")
        else:
            kept += 1
            print(f"kept   {item.what:<13} {item.path}: in use by another ddr process")
    print(f"{verb} {done} items ({format_size(freed)})" + (f"; kept {kept} in use" if kept else "")
          if items else "nothing to collect: no temporaries, quarantine or orphaned locks")
    return 0


def _add_filters(p: Any, *, protocol: bool) -> None:
    from ddr.store.inventory import KINDS

    p.add_argument("--kind", action="append", choices=KINDS, metavar="KIND",
                   help=f"only this kind (repeatable): {', '.join(KINDS)}")
    p.add_argument("--method", default=None,
                   help="only entries whose metadata names this method, or that its recorded runs used")
    p.add_argument("--dataset", default=None,
                   help="only entries whose metadata names this dataset, or that its recorded runs used")
    if protocol:
        p.add_argument("--protocol", default=None,
                       help="only entries that recorded runs under this protocol used (from the results database; "
                            "jobs and sets are shared across protocols and do not record one)")
    p.add_argument("--older-than", default=None, metavar="AGE",
                   help="only entries last written longer ago than AGE (30m, 12h, 7d, 2w; a bare number is days)")


def add_cache_commands(sub: Any) -> None:
    p = sub.add_parser("cache", help="the cache: info, ls, prune, gc, verify")
    csub = p.add_subparsers(dest="cache_command", metavar="SUBCOMMAND", required=True)
    v = csub.add_parser("verify", help="check every job result, model, distilled set and asset against its checksum "
                                      "(exit 1 when one fails)")
    v.add_argument("--quarantine", action="store_true",
                   help="move failing entries to <cache>/quarantine/ so runs rebuild them")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_cache_verify)

    i = csub.add_parser("info", help="entries and size per kind (jobs, reference models, distilled sets, experts, "
                                     "ZCA fits, assets, quarantine) and the results database's size")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_cache_info)

    ls = csub.add_parser("ls", help="the entries: kind, size, age and what their metadata says they are")
    _add_filters(ls, protocol=True)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_cache_ls)

    pr = csub.add_parser("prune", help="remove the entries matching the filters (never one in use, never the "
                                       "results database unless --include-results-db)")
    _add_filters(pr, protocol=True)
    pr.add_argument("--all", action="store_true", help="every entry (no filter)")
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    pr.add_argument("--include-results-db", action="store_true",
                    help="also delete the results database (every run `ddr results` lists; record folders stay)")
    pr.set_defaults(func=cmd_cache_prune)

    g = csub.add_parser("gc", help="remove what nothing references: temporaries of killed writes, quarantine, "
                                   "orphaned lock files")
    g.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    g.set_defaults(func=cmd_cache_gc)
