"""``ddr cache verify``: check every cache entry against its checksums (:mod:`ddr.store.verify`)."""

from __future__ import annotations

import argparse
import json
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


def add_cache_commands(sub: Any) -> None:
    p = sub.add_parser("cache", help="the cache: verify every entry against its checksums")
    csub = p.add_subparsers(dest="cache_command", metavar="SUBCOMMAND", required=True)
    v = csub.add_parser("verify", help="check every job result, model, distilled set and asset against its checksum "
                                      "(exit 1 when one fails)")
    v.add_argument("--quarantine", action="store_true",
                   help="move failing entries to <cache>/quarantine/ so runs rebuild them")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_cache_verify)
