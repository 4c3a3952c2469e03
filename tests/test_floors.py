"""The package's floors, read from its source with ``ast`` (nothing is imported): no import cycle,
every module in a layer that imports only from layers below, no function-local import except
of an optional or slow-to-import dependency, no private name of one module used in another, no
module importing the ``__init__`` of its own package."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "pyembed"

# Imported inside functions, on purpose: optional dependencies, and matplotlib and tqdm, which
# are dependencies but take 0.3 s and 40 ms to import (``import pyembed`` takes 90 ms).
LAZY = {"torch", "gensim", "matplotlib", "tqdm", "scipy", "ml_dtypes", "mpi4py", "tokenizers"}
# pyembed's own engine modules, which import a LAZY dependency at their top (DESIGN: "other
# engines sit above the C core"): a module that needs one only sometimes (a bench area) imports it
# inside a function, as it would the dependency itself.
LAZY_MODULES = {"torch"}

# The floors, lowest first: a module imports only from lower floors (and its own package's
# private helpers). The training side (tables, positions, optimizers) and the word-vector side
# share only the base.
LAYERS = [
    ("base", {"_core", "_util", "_checks", "_version", "_mapfile"}),
    ("table parts", {"embedding_memmap"}),
    ("tables", {"embedding", "positional", "optim._params", "optim.in_backward",
                "distributed.mpi", "distributed.routing",
                "vocab", "vecattr", "safetensors", "evaluation", "corpus", "fasttext",
                "tokenizer", "huffman", "progress"}),
    ("composed", {"bag", "checkpoint", "rope", "optim.optimizer", "optim.clip_grad",
                  "distributed._replicated", "distributed.checkpoint",
                  "io", "writers", "kvedit", "kvstore", "neighbours"}),
    ("algorithms", {"optim.adam", "optim.adagrad", "optim.sgd", "optim.lr_scheduler", "vectors",
                    "torch", "distributed.sharded", "input_embedding"}),
    ("variants", {"optim.sparse_adam", "train", "plot"}),
    ("packages", {"optim", "distributed"}),
    ("bench harness", {"bench.harness"}),
    ("bench rows", {"bench.rows_adagrad", "bench.rows_core", "bench.rows_optim",
                    "bench.rows_positional", "bench.rows_vectors", "bench.rows_train",
                    "bench.rows_step", "bench.peak_rss", "bench.rows_distributed",
                    "bench.rows_torch", "bench.rows_fasttext"}),
    ("bench command", {"bench.run"}),
    ("bench package", {"bench", "bench.__main__"}),
    ("cli", {"cli"}),
    ("entry", {"__init__", "__main__"}),
]
TRAINING = {"embedding", "embedding_memmap", "positional", "rope", "bag", "input_embedding", "torch"} | {
    m for _, mods in LAYERS for m in mods if m.startswith(("optim", "distributed"))}
# safetensors (a file-format reader over _util alone) and checkpoint (a Hugging Face folder's
# input-stage tensors) are shared: InputEmbedding.from_pretrained reads checkpoints with them
WORD_VECTORS = {"vectors", "vocab", "io", "writers", "kvedit", "kvstore", "neighbours", "train",
                "corpus", "evaluation", "plot", "vecattr", "fasttext",
                "huffman", "progress"}


def _name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" and len(rel.parts) > 1 else rel.parts
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}
EXTENSIONS = {"_core"}  # built from csrc/: imports nothing of the package


def _package_of(mod, path):
    """The package a module's relative imports start from ('' is pyembed itself)."""
    pkg = mod if path.name == "__init__.py" and mod != "__init__" else mod.rpartition(".")[0]
    return "" if pkg == "__init__" else pkg


def _imports(mod):
    """(target module, imported name or None, lineno, function-local) for every import of
    ``mod``; targets inside pyembed are dotted names relative to it, '__init__' for pyembed."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text(), str(path))
    out = []

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    name = a.name
                    target = name[len("pyembed."):] if name.startswith("pyembed.") else (
                        "__init__" if name == "pyembed" else "!" + name)
                    out.append((target, None, child.lineno, inner))
            elif isinstance(child, ast.ImportFrom):
                if child.level == 0:
                    base = child.module or ""
                    if base == "pyembed" or base.startswith("pyembed."):
                        base = base[len("pyembed"):].lstrip(".")
                    else:
                        for a in child.names:
                            out.append(("!" + base, a.name, child.lineno, inner))
                        continue
                else:
                    pkg = _package_of(mod, path).split(".") if _package_of(mod, path) else []
                    pkg = pkg[:len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([child.module] if child.module else []))
                for a in child.names:
                    sub = f"{base}.{a.name}" if base else a.name
                    if sub in MODULES or sub in EXTENSIONS:
                        out.append((sub, None, child.lineno, inner))
                    else:
                        out.append((base or "__init__", a.name, child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return out


def _graph():
    graph = {m: {t for t, _, _, local in _imports(m) if not t.startswith("!") and not local}
             for m in MODULES}
    graph.update({m: set() for m in EXTENSIONS})
    return graph


def test_every_module_is_on_a_floor():
    placed = [m for _, mods in LAYERS for m in mods]
    assert sorted(placed) == sorted(set(placed)), "a module is on two floors"
    modules = set(MODULES) | EXTENSIONS
    assert modules == set(placed), (
        f"modules not on a floor: {sorted(modules - set(placed))}; "
        f"floors naming no module: {sorted(set(placed) - modules)}")


def test_no_import_cycle():
    graph = _graph()
    state = {}

    def walk(m, stack):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                walk(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])


def test_imports_go_down_the_floors():
    floor = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}
    bad = [f"{m} ({LAYERS[floor[m]][0]}) imports {t} ({LAYERS[floor[t]][0]})"
           for m, ts in _graph().items() for t in ts
           if floor[t] >= floor[m]]
    assert not bad, "\n".join(bad)


def test_training_side_imports_nothing_of_the_word_vector_side():
    graph = _graph()
    for m in sorted(TRAINING):
        seen, todo = set(), [m]
        while todo:
            for t in graph[todo.pop()] - seen:
                seen.add(t)
                todo.append(t)
        assert not seen & WORD_VECTORS, f"{m} reaches {sorted(seen & WORD_VECTORS)}"


def test_no_module_imports_its_own_package_init():
    bad = []
    for m, path in MODULES.items():
        own = _package_of(m, path) or "__init__"
        if path.name == "__init__.py" and m != "__init__" or m == "__init__":
            continue  # a package's __init__ imports its submodules
        bad += [f"{m}:{line} imports {name or 'the package'} from {t}"
                for t, name, line, _ in _imports(m)
                if t == own and not (m == "__main__" or m.endswith(".__main__"))]
    assert not bad, "\n".join(bad)


def test_no_function_local_import_but_lazy_dependencies():
    bad = sorted({f"{m}:{line} imports {t.lstrip('!')} inside a function"
                  for m in MODULES for t, _, line, local in _imports(m)
                  if local and not (t.startswith("!") and t[1:].split(".")[0] in LAZY)
                  and t not in LAZY_MODULES})
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_module():
    bad = [f"{m}:{line} imports {name} from {t}"
           for m in MODULES for t, name, line, _ in _imports(m)
           if name and name.startswith("_") and not name.startswith("__")
           and not t.startswith("!")]
    assert not bad, "\n".join(bad)


def _owned_private_names(tree):
    """Private names a module defines: functions, classes, assignments (module, class or
    ``self.x = ...``) and ``__slots__`` entries."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__slots__"
                                                  for t in node.targets)):
            names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return {n for n in names if isinstance(n, str) and n.startswith("_")}


def _private_uses(tree):
    """(line, name) of every ``obj._name`` read and ``getattr(obj, "_name", ...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            yield node.lineno, node.attr
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr",
                                                                                 "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            yield node.lineno, node.args[1].value


def test_no_private_attribute_of_another_module():
    """``obj._x`` in a module that does not itself define ``_x``: a private name of another
    module's object (``emb._frozen_rows`` read by the optimizers, ``Vectors._trusted`` called by
    io.py). The private modules and the namedtuple methods are the exceptions."""
    # (_use_count: torch.Tensor's reference count, which pyembed.torch reads to know whether the
    # gradient buffer it handed torch is still held; torch has no public name for it)
    foreign_ok = {"_core", "_util", "_checks", "_version", "_params", "_fields", "_asdict",
                  "_replace", "_make", "_use_count"}
    bad = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        own = _owned_private_names(tree)
        bad += [f"{m}:{line} uses .{name}" for line, name in _private_uses(tree)
                if name.startswith("_") and not name.startswith("__") and name not in own
                and name not in foreign_ok]
    assert not bad, "\n".join(bad)
