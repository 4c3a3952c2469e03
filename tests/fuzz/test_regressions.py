"""Every input the fuzzers ever flagged (tests/fuzz/crashes/<harness>/) and every seed
(tests/fuzz/corpus/<harness>/) replayed through its harness's target (fuzz_targets.py,
fuzz_convert.py) under plain pytest, in a child process (one per kept input, one for all the
seeds): a segfault or a sanitizer abort fails the test instead of the suite. The child imports
the same pyembed as this process (the in-place build, or the sanitizer build when CI runs the
suite under ASan).

A kept input whose fix has not landed is listed in KNOWN with the reason; its test is
xfail(strict=True), so it turns red the moment the fix lands and the entry must go.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyembed

HERE = Path(__file__).resolve().parent

#: "harness/file" -> what is wrong (issue 11 round); delete the entry when the fix lands.
KNOWN = {
    "vocab/saved_file_with_cr_token_does_not_load":
        "Vocab.load reads b'\\nb\\n\\r' as ['', 'b', '\\r']; save writes '\\nb\\n\\r\\n', which "
        "Vocab.load refuses (repeated tokens): a saved vocabulary must load back",
    "vocab/token_ending_in_cr":
        "Vocab.load reads b'a\\r' as the token 'a\\r'; save writes 'a\\r\\n', which loads as 'a'",
}


def _files(kind):
    root = HERE / kind
    if not root.is_dir():
        return []
    return sorted((h.name, f) for h in root.iterdir() if h.is_dir()
                  for f in h.iterdir() if f.is_file())


def replay(paths):
    """Run `paths` through their harnesses in a child process; (returncode, output)."""
    env = dict(os.environ)
    where = str(Path(pyembed.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [where, env.get("PYTHONPATH")]))
    r = subprocess.run([sys.executable, str(HERE / "fuzz.py"), "--replay", *map(str, paths)],
                       env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def _crash_params():
    for harness, path in _files("crashes"):
        key = f"{harness}/{path.name}"
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[key])] if key in KNOWN else []
        yield pytest.param(harness, path, id=key, marks=marks)


@pytest.mark.parametrize("harness, path", list(_crash_params()))
def test_kept_input(harness, path):
    rc, out = replay([path])
    assert rc == 0, f"{harness} flags {path.name} again:\n{out[-3000:]}"


def test_seed_corpus():
    """The seeds pass too (a target that cannot run its own seeds fuzzes nothing)."""
    rc, out = replay([p for _, p in _files("corpus")])
    assert rc == 0, out[-3000:]


def test_known_entries_have_files():
    kept = {f"{h}/{p.name}" for h, p in _files("crashes")}
    assert set(KNOWN) <= kept, sorted(set(KNOWN) - kept)
