"""``python -m siibrad``: the same command line as the ``siibrad`` script."""

from siibrad.cli import main

raise SystemExit(main())
