"""`python -m flowtools.cli` = the `flowtools` command (entered through the console script's
entry, ``_flowtools_launcher.main``, for the same Ctrl-C rules)."""

import sys

from _flowtools_launcher import main

sys.exit(main())
