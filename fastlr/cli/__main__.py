"""``python -m fastlr.cli``: the ``fastlr`` command."""

import sys

from . import main

sys.exit(main())
