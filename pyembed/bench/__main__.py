"""``python -m pyembed.bench``: see pyembed/bench/run.py."""
import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
