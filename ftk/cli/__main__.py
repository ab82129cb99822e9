"""`python -m ftk.cli ...`: the `ftk` command."""

import sys

from ftk.cli.main import main

sys.exit(main())
