"""``python -m lipsync_core`` is the ``lipsync`` command."""
import sys

from .front.cli import main

sys.exit(main())
