"""`python -m flowtools.cli` = the `flowtools` command."""

import sys

from flowtools.cli import main

sys.exit(main())
