"""The layout rules of the package: short functions, no import circles, notebooks that only call the core."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "specvit_core"
MAX_FUNCTION_LINES = 80


def _functions(tree: ast.AST):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The specvit_core modules a module imports at module level (function-level imports are deferred)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("specvit_core")}


def test_no_function_in_the_package_exceeds_80_lines():
    long = [f"{path.relative_to(ROOT)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
            for path in sorted(PACKAGE.rglob("*.py")) for f in _functions(ast.parse(path.read_text()))
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_no_import_circle_inside_the_package():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}

    def reaches(start: str, target: str, seen: set) -> bool:
        return any(n == target or (n not in seen and not seen.add(n) and reaches(n, target, seen))
                   for n in graph[start])

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a, set()))
    packages = {n for n, p in modules.items() if p.name == "__init__.py"}
    circles = [c for c in circles if not set(c.split(" <-> ")) & packages]  # a package re-exporting its modules
    assert not circles, "import circles: " + ", ".join(circles)


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_notebooks_define_no_functions_and_read_no_run_files(notebook):
    tree = ast.parse(notebook.read_text())
    assert not [f.name for f in _functions(tree)], "a notebook calls the core; its functions belong in specvit_core"
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    run_files = [s for s in strings if any(f in s for f in ("predictions.csv", "metrics.json", "history.csv",
                                                             "config.json", "best.pt", "last.pt"))]
    assert not run_files, f"the notebook reads run files directly ({run_files}); use specvit_core.runs"


def _core_calls(notebook: Path) -> set[tuple[str, str]]:
    """(module, function) of every specvit_core function or class the notebook calls."""
    tree = ast.parse(notebook.read_text())
    names = {}  # local name -> (module, attribute) or (module, None) for an imported module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specvit_core"):
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    calls = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            calls.add(names[func.id])
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in names:
            module, attribute = names[func.value.id]
            calls.add((f"{module}.{attribute}", func.attr))
    return calls


def test_every_core_function_the_notebooks_call_has_numpydoc_sections():
    import importlib
    import inspect

    missing = []
    for module, name in sorted(set().union(*map(_core_calls, (ROOT / "notebooks").glob("[0-9][0-9]_*.py")))):
        try:
            obj = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:  # a method of an imported class (e.g. SimulationConfig.from_profile)
            owner, attribute = module.rsplit(".", 1)
            obj = getattr(getattr(importlib.import_module(owner), attribute), name)
        doc = inspect.getdoc(obj) or ""
        parameters = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        returns_value = not inspect.isclass(obj) and inspect.signature(obj).return_annotation not in ("None", None)
        lacking = [s for s, needed in (("Parameters", parameters), ("Returns", returns_value)) if needed and s not in doc]
        if lacking:
            missing.append(f"{module}.{name} ({', '.join(lacking)})")
    assert not missing, "numpydoc sections missing: " + "; ".join(missing)
