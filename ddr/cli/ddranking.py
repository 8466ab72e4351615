"""``ddr ddranking convert CONFIG.yaml -o ddr-config.yaml`` (docs/ddranking.md §3).

Never imports torch.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add ``ddr ddranking convert`` to the sub-command parsers ``sub``."""
    p = sub.add_parser("ddranking", help="DD-Ranking 0.2.0 configs: convert one into a ddr protocol file")
    commands = p.add_subparsers(dest="ddranking_command", metavar="COMMAND", required=True)
    c = commands.add_parser("convert", help="write the ddr protocol file closest to a DD-Ranking config and print "
                                            "every change it made and why")
    c.add_argument("config", help="the DD-Ranking config (YAML or JSON)")
    c.add_argument("-o", "--output", required=True, metavar="FILE", help="the ddr protocol YAML to write")
    c.add_argument("--protocol", default=None, help="ddranking-hard or ddranking-soft (default: the config's keys)")
    c.add_argument("--ars", action="store_true", help="AugmentationRobustScore (ARS) instead of the label scores")
    c.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from ddr.compat.ddranking.config import CLASS_NAMES
    from ddr.compat.ddranking.convert import convert, write

    conversion = convert(args.config, protocol=args.protocol, ars=args.ars or None)
    path = write(conversion, args.output)
    mapped = conversion.mapped
    print(f"{args.config}: {CLASS_NAMES[mapped.evaluator]} -> {path} (includes protocol {mapped.protocol})")
    for key, value in conversion.overrides.items():
        print(f"  set {key}: {value!r}")
    for note in mapped.notes:
        print(f"  note: {note}")
    print(f"evaluate with: ddr eval DIR --protocol {path} {' '.join(conversion.flags)}".rstrip())
    return 0
