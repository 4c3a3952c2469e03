"""What a new user meets before any kernel runs: importing pyembed from a source folder with no
built extension says what to do (never a "circular import"), and the ``pyembed`` command that pip
installs is the CLI's ``main``."""
import importlib
import importlib.machinery
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

import pyembed
from pyembed import cli

PKG_DIR = os.path.dirname(os.path.abspath(pyembed.__file__))
PYPROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pyproject.toml")


def _source_copy(tmp_path, extra_files=()):
    """A copy of the package folder under test without its built extension, as a fresh clone has
    it; ``extra_files`` are created empty beside ``__init__.py``."""
    dst = tmp_path / "pyembed"
    shutil.copytree(PKG_DIR, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    for name in extra_files:
        (dst / name).write_bytes(b"not an extension")
    return dst


def _python(tmp_path, *args):
    """Python run in tmp_path, which sys.path puts first (as a user's ``python -m`` in a clone)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args", [["-c", "import pyembed"], ["-m", "pyembed", "demo"]],
                         ids=["import", "python-m"])
def test_import_from_a_source_folder_says_what_to_do(tmp_path, args):
    src = _source_copy(tmp_path)
    r = _python(tmp_path, *args)
    assert r.returncode == 1, r
    assert "ImportError: pyembed's C extension (pyembed._core) is not built in " + str(src) in r.stderr
    assert "`pip install .`" in r.stderr and "from another directory" in r.stderr
    assert "`python setup.py build_ext --inplace`" in r.stderr
    assert "circular" not in r.stderr


def test_import_names_an_extension_built_for_another_python(tmp_path):
    _source_copy(tmp_path, ["_core.cpython-299-x86_64-linux-gnu.so"])
    r = _python(tmp_path, "-c", "import pyembed")
    assert "is not built in" in r.stderr
    assert "(_core.cpython-299-x86_64-linux-gnu.so) were built for another Python" in r.stderr


def test_import_of_a_built_extension_that_fails_keeps_its_own_error(tmp_path):
    # a real extension that does not load (here: not an ELF file; in life a missing symbol or
    # sanitizer runtime) must not be reported as "not built"
    _source_copy(tmp_path, ["_core" + importlib.machinery.EXTENSION_SUFFIXES[0]])
    r = _python(tmp_path, "-c", "import pyembed")
    assert r.returncode == 1 and "ImportError" in r.stderr
    assert "is not built in" not in r.stderr


def _script_target(spec):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_pyproject_script_is_the_cli_main():
    if sys.version_info < (3, 11) or not os.path.exists(PYPROJECT):
        pytest.skip("needs tomllib (3.11) and the source tree's pyproject.toml")
    import tomllib  # optional: Python >= 3.11 only

    with open(PYPROJECT, "rb") as fh:
        project = tomllib.load(fh)
    assert _script_target(project["project"]["scripts"]["pyembed"]) is cli.main
    assert {"py.typed", "*.pyi"} <= set(project["tool"]["setuptools"]["package-data"]["*"])


def test_entry_point_runs_help(capsys):
    with pytest.raises(SystemExit) as e:
        _script_target("pyembed.cli:main")(["--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage: pyembed ")


def _installed_here():
    """The installed distribution, when it is the package under test (not a source build)."""
    try:
        dist = importlib.metadata.distribution("pyembed")
    except importlib.metadata.PackageNotFoundError:
        return None
    init = os.path.abspath(str(dist.locate_file("pyembed/__init__.py")))
    return dist if init == os.path.abspath(pyembed.__file__) else None


def test_installed_console_script():
    dist = _installed_here()
    if dist is None:
        pytest.skip("the pyembed under test is not the pip-installed one (an in-place or separate build)")
    (ep,) = [e for e in dist.entry_points if e.group == "console_scripts" and e.name == "pyembed"]
    assert ep.load() is cli.main
    assert os.path.exists(os.path.join(PKG_DIR, "py.typed"))
    # the script pip wrote beside this interpreter's (PATH may lead to another installation's)
    script = shutil.which("pyembed", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("no pyembed script in this interpreter's scripts folder")
    r = subprocess.run([script, "info", "/nonexistent/v.txt"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("pyembed info: error: cannot read"), r
