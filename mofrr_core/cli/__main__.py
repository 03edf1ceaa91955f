"""``python -m mofrr_core.cli``: the ``mofrr`` command, e.g. ``accelerate launch -m mofrr_core.cli restore ...``."""

import sys

from mofrr_core.cli import main

sys.exit(main())
