"""pyembed.bench: the kernel benchmarks (``python -m pyembed.bench``, ``pyembed bench``).

``run.py`` parses the command line and prints the rows; ``harness.py`` holds the one timing
harness (:func:`race`) that every row uses; ``rows_<area>.py`` build each area's rows."""
from .harness import Context, fmt_row, race, zipf_ids
from .run import AREAS, main

__all__ = ["AREAS", "Context", "fmt_row", "main", "race", "zipf_ids"]
