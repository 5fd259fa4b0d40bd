"""The package's shape: ``core`` grouped by concept, and imports that run one way only."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "aqi_assets" / "core"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level (lazy) imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aqi_assets"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("aqi_assets")}
    return found


def _module_graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(CORE.parents[1]).with_suffix("").parts).removesuffix(".__init__"): p
               for p in CORE.rglob("*.py")}
    return {name: {d for d in _imports(path) if d in modules and d != name} for name, path in modules.items()}


def test_core_is_a_handful_of_packages():
    modules = [p.name for p in CORE.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(modules) <= 4, modules
    assert len(packages) >= 4 and {"data", "training", "monitoring", "configuration", "backtest"} <= set(packages)
    for package in packages:  # each says what it owns
        assert ast.get_docstring(ast.parse((CORE / package / "__init__.py").read_text())), package


def test_no_import_circle_in_core():
    graph = _module_graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            assert state.get(dep) != 1, "import circle: " + " -> ".join(path[path.index(dep):] + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "aqi_assets.core.training.forecasting.factory" in graph["aqi_assets.core.training.forecasting"]


def test_every_import_of_the_package_resolves_including_the_lazy_ones():
    """Imports inside functions (heavy libraries loaded when used) run late; check them all now."""
    import importlib

    package = CORE.parents[0]
    broken = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aqi_assets"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            broken.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("aqi_assets"):
                        importlib.import_module(alias.name)
    assert not broken, broken
