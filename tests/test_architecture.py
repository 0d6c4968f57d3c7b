"""The shape of the code: no import circles in backend/ (imports inside functions count too), every backend
module imports in a fresh interpreter, backend/ never imports streamlit, and configuration is read in
one place (backend/config.py), with every FOOLING_LAB_* variable documented in README."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from backend.config import ENV_VARS, Settings

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"
PREFIX = "FOOLING_LAB_"
# Read by the ./lab shell script before any Python runs (it picks the virtualenv), so not a Setting.
LAUNCHER_VARS = {"FOOLING_LAB_VENV"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def backend_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(BACKEND.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement in `path` names, at any depth (functions included),
    except under `if TYPE_CHECKING:`; `from a import b` names both `a` and `a.b`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """backend module -> the backend modules it imports (a module's own parent packages excluded)."""
    modules = backend_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(n) for n in imported_names(path, module)}
        graph[module] = {t for t in targets if t and t != module and not module.startswith(t + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_sees_imports_inside_functions(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from ..jobs import queue\n")
    assert {"backend.jobs", "backend.jobs.queue"} <= imported_names(path, "backend.x.probe")


def test_backend_has_no_import_circles():
    found = circles(import_graph())
    assert found == [], "import circles in backend/ (imports inside functions count):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_backend_never_imports_streamlit():
    offenders = [
        module
        for module, path in backend_modules().items()
        if any(n == "streamlit" or n.startswith("streamlit.") for n in imported_names(path, module))
    ]
    assert offenders == []


IMPORT_ALL = """
import importlib, json, sys
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps({"failed": failed, "streamlit": any(m.split('.')[0] == 'streamlit' for m in sys.modules)}))
"""


def test_every_backend_module_imports_in_a_fresh_interpreter():
    names = [m for m in backend_modules() if not m.endswith("__main__")]
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["streamlit"] is False  # not even indirectly


def python_files() -> list[Path]:
    skip = {".git", ".lab_data", "models_cache", "node_modules", "test-artifacts"}
    return [p for p in sorted(ROOT.rglob("*.py")) if not skip & set(p.relative_to(ROOT).parts)]


def _prefixed(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PREFIX)


def env_reads(tree: ast.AST) -> list[int]:
    """Lines that read a FOOLING_LAB_* variable: `x.get("FOOLING_LAB_..")`, `os.getenv(..)`,
    `x["FOOLING_LAB_.."]` as a value, `"FOOLING_LAB_.." in x`. Setting, deleting and popping are writes."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _prefixed(node.args[0]):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "getenv", "getenvb"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _prefixed(node.slice):
            lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and _prefixed(node.left):
            if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                lines.append(node.lineno)
    return lines


def test_only_backend_config_reads_fooling_lab_variables():
    readers = {}
    for path in python_files():
        if path == BACKEND / "config.py":
            continue
        lines = env_reads(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            readers[str(path.relative_to(ROOT))] = lines
    assert readers == {}, "read FOOLING_LAB_* through backend.config.get_settings() instead"


def test_the_reader_check_tells_reads_from_writes():
    reads = env_reads(
        ast.parse(
            'import os\nos.environ.get("FOOLING_LAB_X")\nos.getenv("FOOLING_LAB_Y", "1")\n'
            'v = os.environ["FOOLING_LAB_Z"]\nif "FOOLING_LAB_W" in os.environ: pass\n'
            'os.environ["FOOLING_LAB_A"] = "1"\nos.environ.pop("FOOLING_LAB_B", None)\n'
            'env = {"FOOLING_LAB_C": "2"}\n'
        )
    )
    assert reads == [2, 3, 4, 5]


def test_every_fooling_lab_variable_is_a_setting_documented_in_readme():
    known = {v.name for v in ENV_VARS}
    mentioned: dict[str, str] = {}
    for path in [*python_files(), ROOT / "lab"]:
        if path == Path(__file__).resolve():
            continue  # its own examples
        for name in re.findall(r"\bFOOLING_LAB_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")):
            mentioned.setdefault(name, str(path.relative_to(ROOT)))
    unknown = {name: where for name, where in mentioned.items() if name not in known | LAUNCHER_VARS}
    assert unknown == {}, "a FOOLING_LAB_* variable that backend/config.py does not know"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    undocumented = sorted(name for name in known | LAUNCHER_VARS if f"`{name}`" not in readme)
    assert undocumented == []
    assert {v.field for v in ENV_VARS} <= set(Settings.__dataclass_fields__)


# What a page may import from backend/: the services, the jobs facade (`from backend import jobs`, not
# its modules), the typed errors it shows and the session it passes to the services (backend.access).
# Everything that computes lives behind a service.
PAGE_ALLOWED = ("backend.services", "backend.jobs", "backend.errors", "backend.access")


def page_backend_imports(path: Path) -> list[str]:
    """The backend modules a page file imports (outside `if TYPE_CHECKING:`), as `from a import b` ->
    `a.b` when `a` is a package name such as `backend`, else `a`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "backend"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "backend":
            if node.module == "backend":
                out += [f"backend.{a.name}" for a in node.names]
            else:
                out.append(node.module)
    return out


def test_pages_import_only_services_the_jobs_facade_and_errors(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from backend import jobs\ndef f():\n    from backend.explain import METHODS\n")
    assert page_backend_imports(probe) == ["backend.jobs", "backend.explain"]
    offenders = {}
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        bad = [
            name
            for name in page_backend_imports(path)
            if not any(
                name == ok or (ok == "backend.services" and name.startswith(ok + ".")) for ok in PAGE_ALLOWED
            )
        ]
        if bad:
            offenders[path.name] = bad
    assert offenders == {}, "pages call backend/services (or the jobs facade) only"
