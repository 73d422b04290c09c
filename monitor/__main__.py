"""``python -m monitor`` runs the driftmon CLI."""

import sys

from monitor.cli import main

sys.exit(main())
