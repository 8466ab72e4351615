"""``ddr site build``: the leaderboard as a static site (:mod:`ddr.report.site`).

Register it with :func:`add_site_commands`. Never imports torch; matplotlib only for the plots.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ddr.errors import DdrError


def cmd_site_build(args: argparse.Namespace) -> int:
    from ddr.cli.results import selected_rows
    from ddr.report.site import build_site

    rows = selected_rows(args)
    if not rows:
        raise DdrError("no runs match" + (f" in suite '{args.suite}'" if args.suite else "")
                       + "; add run folders with `ddr results import DIR`")
    result = build_site(rows, args.output, w=args.w, bundles=args.bundles, reported=args.reported,
                        plots=args.plots, mixed=args.mixed, title=args.title)
    print(result.summary())
    print(f"open {result.out / 'index.html'} in a browser, or publish the folder on any static host",
          file=sys.stderr)
    return 0


def _site_help(args: argparse.Namespace) -> int:
    args.site_parser.print_help()
    return 0


def add_site_commands(subparsers: Any) -> None:
    """Register ``site`` with its sub-command ``build``."""
    from ddr.cli.results import _common, _w

    p = subparsers.add_parser("site", help="the leaderboard as a static web site (index, one page per cell and "
                                           "per method, bundle downloads)")
    p.set_defaults(func=_site_help, site_parser=p)
    sub = p.add_subparsers(dest="site_command", metavar="{build}")
    b = sub.add_parser("build", help="write the site into a folder: it works from file:// and on any static host, "
                                     "with no request outside the folder")
    _common(b)
    b.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the site's folder (new, empty, or a site ddr wrote before, which is replaced)")
    b.add_argument("--bundles", default=None, metavar="DIR",
                   help="a folder of result bundles (ddr export); each is copied into the site and linked from "
                        "the rows whose run ids it holds")
    b.add_argument("--w", type=_w, default=0.5, help="the DDRS weight the pages open at (default 0.5; each cell "
                                                     "page has a slider)")
    b.add_argument("--no-reported", dest="reported", action="store_false",
                   help="leave out the methods' published numbers (shown beside the measurements by default)")
    b.add_argument("--no-plots", dest="plots", action="store_false",
                   help="write no SVG plots (they need matplotlib: pip install \"ddr-bench[plots]\")")
    b.add_argument("--mixed", action="store_true",
                   help="put runs of different protocols on one board anyway (the board says so)")
    b.add_argument("--title", default="ddr leaderboard", help="the site's title")
    b.set_defaults(func=cmd_site_build)
