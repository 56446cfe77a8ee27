"""``python -m lipsync_core`` is the ``lipsync`` command."""
import sys

from .cli import main

sys.exit(main())
