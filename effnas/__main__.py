"""``python -m effnas``: the command line (the same as the ``effnas`` script)."""

from effnas.experiments.cli.main import main

raise SystemExit(main())
