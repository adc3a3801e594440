"""`python -m kiosk.cli`: what the fleet's launcher and the tests run."""

import sys

from kiosk.cli import main

sys.exit(main())
