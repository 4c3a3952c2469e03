"""Run one fuzz harness under atheris, or replay kept inputs without it.

    python tests/fuzz/fuzz.py HARNESS [libFuzzer flags and corpus folders]   (needs atheris)
    python tests/fuzz/fuzz.py --replay FILE...                              (plain Python)

HARNESS is a key of fuzz_targets.HARNESSES or "convert" (fuzz_convert.py). Replay runs each file
through the target named by its folder (corpus/<harness>/..., crashes/<harness>/...) and exits 1
with the traceback at the first finding; a crash kills it, which is why test_regressions.py
replays in a child process.

FUZZ_SKIP (a regular expression): while fuzzing, an exception whose "Type: message" it matches is
counted and passed over, so that a long run gets past findings already reported. Never set in CI.
"""
import collections
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _target(name):
    import fuzz_convert
    import fuzz_targets

    harnesses = dict(fuzz_targets.HARNESSES, convert=fuzz_convert.convert)
    if name not in harnesses:
        sys.exit(f"unknown harness {name!r}; one of {sorted(harnesses)}")
    return harnesses[name]


def replay(paths):
    for p in paths:
        name = os.path.basename(os.path.dirname(os.path.abspath(p)))
        with open(p, "rb") as f:
            data = f.read()
        try:
            _target(name)(data)
        except BaseException:
            print(f"finding: {name} {p}", file=sys.stderr)
            traceback.print_exc()
            return 1
    return 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--replay":
        return replay(sys.argv[2:])
    import atheris  # only the fuzzing mode needs it (pip install atheris)

    name = sys.argv[1]
    # the targets import pyembed: inside the block, so that atheris sees its branches
    with atheris.instrument_imports(include=["pyembed", "fuzz_targets", "fuzz_convert"]):
        target = _target(name)
    skip = os.environ.get("FUZZ_SKIP")
    if skip:
        target = _skipping(target, re.compile(skip))
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()
    return 0


def _skipping(target, pattern):
    skipped = collections.Counter()

    def run(data):
        try:
            target(data)
        except Exception as e:
            what = f"{type(e).__name__}: {e}"
            if not pattern.search(what):
                raise
            if not skipped[what[:60]]:
                print(f"fuzz: passing over {what[:200]!r}", file=sys.stderr)
            skipped[what[:60]] += 1

    return run


if __name__ == "__main__":
    sys.exit(main())
