"""The README's Python blocks are a tour a newcomer copies: run them all, in order, in one
namespace, in a scratch directory (they write small files)."""
import importlib
import pathlib
import re

import pytest

import pyembed

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return [code for _, code in python_blocks_with_needs()]


def python_blocks_with_needs():
    """(needs, code) of every ```python block; ``needs`` are the words of a
    ``<!-- test_readme needs: ... -->`` line just above the block (invisible on a rendered page):
    optional packages, or ``pyembed.X.y`` attributes a block uses before they exist everywhere."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"(?:<!-- test_readme needs: ([^>]*?) -->\n)?```python\n(.*?)```", text,
                       flags=re.S)
    return [(needs.split(), code) for needs, code in found]


def missing(need):
    """Why ``need`` (a module name or a ``pyembed.`` attribute path) is not available, or None."""
    if need.startswith("pyembed."):
        obj = pyembed
        for part in need.split(".")[1:]:
            if not hasattr(obj, part):
                return f"{need} does not exist yet"
            obj = getattr(obj, part)
        return None
    try:
        importlib.import_module(need)
    except ImportError:
        return f"{need} is not installed"
    return None


def setup_commands():
    """The ```bash blocks of the "## Set up" section: the commands .ci/run runs verbatim."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Set up\n(.*?)(?=^## )", text, flags=re.S | re.M).group(1)
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_the_two_setup_commands():
    # The installed script, not `python -m pyembed`: from the clone's root, where a newcomer types
    # it, `python -m` finds the source folder (no built extension) before the installed package.
    assert setup_commands() == ["pip install . && pyembed demo", "pip install '.[test]' && pytest"]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README tour lost its code blocks"
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ns = {"__name__": "readme"}
    skipped = []
    for i, (needs, code) in enumerate(python_blocks_with_needs()):
        why = [m for m in map(missing, needs) if m]
        if why:  # the block and its names are left out; the blocks after it must not use them
            skipped.append(f"block {i + 1} ({', '.join(why)})")
            continue
        try:
            exec(compile(code, f"README.md block {i + 1}", "exec"), ns)
        except Exception as e:  # name the block that broke
            raise AssertionError(f"README block {i + 1} failed: {e!r}\n{code}") from e
    if skipped:  # every other block ran and passed; say which did not run
        pytest.skip("README " + "; ".join(skipped))


def test_a_needs_line_names_what_it_can_check():
    """A misspelt need would skip its block for ever: every word is a module or pyembed.X."""
    for needs, code in python_blocks_with_needs():
        for need in needs:
            assert need.startswith("pyembed.") or re.fullmatch(r"[a-z_][a-z0-9_]*", need), need
            if need.startswith("pyembed."):  # a new attribute of something that exists
                assert hasattr(pyembed, need.split(".")[1]), need
