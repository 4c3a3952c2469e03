"""pyembed/_core.pyi names every function and Table member of the C module, with the argument
names the glue parses (from each docstring's signature line)."""
import ast
import inspect
import os

from pyembed import _core

STUB = os.path.join(os.path.dirname(_core.__file__), "_core.pyi")


def _stub():
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Table"]
    return funcs, {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def _names(node):
    a = node.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def test_stub_covers_the_module():
    funcs, members = _stub()
    assert set(funcs) == {n for n in dir(_core) if not n.startswith("__") and n != "Table"}
    want = {n for n in dir(_core.Table) if not n.startswith("__")}
    assert want <= set(members)


def test_stub_argument_names_are_the_glues():
    funcs, members = _stub()
    checked = 0
    for owner, table, skip in ((_core, funcs, ()), (_core.Table, members, ("self", "cls"))):
        for name, node in table.items():
            if name == "__new__":
                continue  # Table(num_embeddings, embedding_dim, dtype): its docstring, not a signature
            obj = getattr(owner, name, None)
            try:
                sig = inspect.signature(obj)
            except (TypeError, ValueError):
                continue  # properties and slots without a text signature
            want = [p for p in sig.parameters if p not in ("self", "$self", "module", "$module")]
            assert want == [n for n in _names(node) if n not in skip], name
            checked += 1
    assert checked >= 30
