"""The package's layout keeps the promises the README's Layout section makes:
few modules at the top, no name that means two things, no import cycle, and
one table of backends that nobody re-spells."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "edgeoss"

# Stems that several folders use for the same job, each for its own format or engine.
SAME_JOB = {"__init__", "binding", "engine", "checks"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Modules of edgeoss that `name` imports when it is imported (module level only:
    an import inside a function is deliberate laziness and runs later)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    modules = _modules()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in [node]:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("edgeoss")}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - sub.level + 1], base])
                if not base.startswith("edgeoss"):
                    continue
                for alias in sub.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in modules else base)
    return {m for m in found if m in modules and m != name}


def test_at_most_a_dozen_modules_at_the_top() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= 12, top


def test_no_stem_means_two_things() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert not top & packages, f"a top-level module shares its name with a package: {top & packages}"
    by_stem: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        by_stem[path.stem].append(str(path.relative_to(PACKAGE)))
    clashes = {stem: where for stem, where in by_stem.items() if len(where) > 1 and stem not in SAME_JOB}
    assert not clashes, clashes
    # A module must not share its stem with a package elsewhere either (cli/weights.py is the
    # weights stage's commands, the one exception by design: each command group is named for its stage).
    nested = {p.name for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists()}
    stage_commands = {f"cli/{p}.py" for p in nested}
    for stem, where in by_stem.items():
        if stem in nested:
            assert all(w in stage_commands for w in where), (stem, where)


def test_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path) for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how a package re-exports.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_backend_names_are_spelled_in_one_place() -> None:
    """Only backends.py writes the engines' and backends' spellings as literals."""
    pattern = re.compile(r"""(["'])(ort-genai(-\w+)?|llama\.cpp-(cuda|metal|cpu)|onnxruntime-genai)\1""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "backends.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and "pip install" not in line:
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_string_parsing_of_backends() -> None:
    """Nothing re-parses a backend's name with startswith/endswith: they read the table."""
    pattern = re.compile(r"""(backend|engine)\w*\)?\.(startswith|endswith)\(""")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "\n".join(offenders)
