"""``python -m ddr``: the same command line as the ``ddr`` script."""

from ddr.cli import main

raise SystemExit(main())
