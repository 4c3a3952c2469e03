"""The README's Python blocks are a tour a newcomer copies: run them all, in order, in one
namespace, in a scratch directory (they write small files)."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


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
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"README.md block {i + 1}", "exec"), ns)
        except Exception as e:  # name the block that broke
            raise AssertionError(f"README block {i + 1} failed: {e!r}\n{code}") from e
