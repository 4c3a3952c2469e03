"""``python -m pyembed``: the command line (see pyembed/cli.py), the same as the ``pyembed`` command
that pip installs. ``pyembed demo`` is the first thing to run."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
