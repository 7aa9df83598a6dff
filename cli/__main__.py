"""``python -m cli``: the ``teamocr`` command (how ``teamocr run`` starts its worker processes)."""

import sys

from cli.main import main

sys.exit(main())
