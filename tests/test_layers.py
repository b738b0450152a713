"""The packages point one way: router (HTTP, CLIs, composition) -> admin (supervisor logic and
assets) -> queue / tiers (the engine and the tier stores).

Read from the source (every import statement, at any depth, parsed with `ast`), so an import
inside a function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("router", "admin", "queue", "tiers")

# package -> the packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "admin": {"router"},
    "queue": {"router", "admin"},
    "tiers": {"router", "admin"},
}


def parse(path: Path) -> ast.Module:
    """`ast.parse`, sheltered from CPython 3.11's spurious "AST constructor recursion depth
    mismatch" SystemError (python/cpython#106905): seen once in a full run, never alone. The
    collector is paused while the tree is built (a finalizer run mid-build is one way the
    depth count goes wrong) and a parse that still trips over it is tried again."""
    source = path.read_text()
    for attempt in range(3):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return ast.parse(source, str(path))
        except SystemError:
            if attempt == 2:
                raise
        finally:
            if enabled:
                gc.enable()
    raise AssertionError("unreachable")


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, package) for every `tierline.<package>` this module imports."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "tierline":
                names = [f"tierline.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tierline" and len(parts) > 1:
                found.add((node.lineno, parts[1]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_back_up(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports tierline.{target}"
        for path in modules(package)
        for line, target in sorted(imported_packages(path))
        if target in FORBIDDEN[package]
    ]
    assert wrong == []


def test_no_relative_imports() -> None:
    """Relative imports would slip past the check above: every module imports by full name."""
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in modules(package)
        for node in ast.walk(parse(path))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_the_check_sees_what_it_should(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import tierline.queue.clock\n"
        "from tierline.router.plumbing import errors\n"
        "from tierline import admin\n"
        "def f() -> None:\n"
        "    from tierline.tiers.model import Tier\n"
    )
    assert {target for _, target in imported_packages(module)} == {"queue", "router", "admin", "tiers"}


def test_only_the_composition_root_builds_stores_or_the_app() -> None:
    """router/app.py picks the stores and assembles the application; no other module of the
    service does (the CLI's store-direct reload opens the tier store it writes, nothing more)."""
    builders = {"MemoryCallStore", "RedisCallStore", "MemoryTierStore", "Application"}
    allowed = {
        ROOT / "router" / "app.py": builders | {"RedisTierStore"},
        ROOT / "router" / "cli" / "reload.py": {"RedisTierStore"},
        # The what-if simulator runs the engine itself, a private memory store on a virtual
        # clock per replication, never the service's (test_simulation_stays_off_the_wire).
        ROOT / "admin" / "simulation" / "run.py": {"MemoryCallStore"},
    }
    found = []
    for path in modules("router") + modules("admin"):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in builders | {"RedisTierStore"} and name not in allowed.get(path, set()):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert found == []


def test_simulation_stays_off_the_wire() -> None:
    """admin/simulation runs in a worker process or the CLI: no HTTP, no Redis, no archive
    backend, no metrics, no clock but the virtual one it is handed (it may read an archive
    through the `Archive` contract it is given)."""
    banned_modules = ("aiohttp", "redis", "asyncpg", "psycopg", "sqlite3", "aiosqlite", "time")
    banned_tierline = (
        "queue.redis",
        "queue.metrics",
        "queue.history.sqlite",
        "queue.history.postgres",
        "admin.metrics",
    )
    found = []
    for path in modules("admin/simulation"):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                inner = name.removeprefix("tierline.")
                if name.split(".")[0] in banned_modules or (
                    name.startswith("tierline.") and inner.startswith(banned_tierline)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert found == []


def test_only_the_config_module_reads_the_environment() -> None:
    readers = []
    for package in PACKAGES:
        for path in modules(package):
            if path == ROOT / "router" / "config.py":
                continue
            for node in ast.walk(parse(path)):
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                    readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == []
