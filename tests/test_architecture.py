"""The house rules of /work/shared/architecture.json, checked on the code: the import graph of
`kiosk` (every import statement, inside functions too) has no cycle, only kiosk.station imports
the simulator, and no "never" pair of rooms imports the other. Every module is in a room, and the
base rooms (core, words, bundled files, the service socket) import only each other.

Imports under ``if TYPE_CHECKING:`` never run, but they count like the others, for cycles and for
the rooms: knowing a type is knowing it, and a type-only cycle is two modules that cannot be read
apart (name what one needs of the other as a ``Protocol`` on its own side instead).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kiosk

ROOT = Path(kiosk.__file__).parent

# rooms of architecture.json -> the modules they are (a prefix matches the module and its children)
ROOMS: dict[str, tuple[str, ...]] = {
    "Vision": ("kiosk.vision",),
    "Photo": ("kiosk.photo",),
    "Capture": ("kiosk.capture",),
    "Hw": ("kiosk.hw",),
    "Receipt": ("kiosk.receipt",),
    "Store": ("kiosk.store",),
    "UI": ("kiosk.ui",),
    "Console": ("kiosk.console",),
    "Fleet": ("kiosk.fleet",),
    "Face": ("kiosk.cli",),  # kiosk/cli.py, or the kiosk/cli/ package
    "Sim": ("kiosk.sim",),
    "Station": ("kiosk.service", "kiosk.station", "kiosk.demo", "kiosk.memory"),
    "Monitor": ("kiosk.monitor",),
    # not (yet) in architecture.json, which is read-only here; proposed there with these pairs:
    "Maintenance": ("kiosk.maintenance",),  # the service side of the console: console.* handlers
    "Voice": ("kiosk.voice",),  # spoken prompts: espeak-ng, cache, aplay
    "Text": ("kiosk.text",),  # the bilingual catalogue of every word
    "Assets": ("kiosk.fonts", "kiosk.samples"),  # the bundled CJK font and sample photo
    "Api": ("kiosk.service_api",),  # the service socket: the service serves it, clients call it
    "Core": (  # what every room may build on
        "kiosk.errors",
        "kiosk.config",
        "kiosk.config_edit",
        "kiosk.durable",
        "kiosk.clock",
        "kiosk.jsonlimits",
        "kiosk.bounded_server",
    ),
}

# rooms below all others: they import only each other (the words, the files, the socket, the core)
BASE = ("Core", "Text", "Assets", "Api")
UNROOMED = {"kiosk"}  # the package itself: its version, nothing else

# architecture.json "never": (importer, imported, why)
NEVER: list[tuple[str, str, str]] = [
    ("Vision", "Photo", "vision knows no documents"),
    ("Vision", "Hw", "vision knows no devices"),
    ("Photo", "Hw", "the photo engine touches no hardware"),
    ("Photo", "Capture", "photo is below capture"),
    ("Hw", "Capture", "drivers hold no policy"),
    ("Receipt", "Vision", "receipts know no faces"),
    ("UI", "Vision", "the UI shows state, never analyses"),
    ("Console", "Vision", "console goes through the service"),
    ("Console", "Photo", "no photo reaches the console"),
    ("Hw", "Face", "drivers never import the command line"),
    ("Capture", "Sim", "the session does not know it is simulated"),
    ("Receipt", "Sim", "receipts do not know the printer is virtual"),
    ("Monitor", "Capture", "monitoring reads state, never drives the session"),
    ("Monitor", "Store", "monitoring never reads citizens' records"),
    ("Hw", "Sim", "drivers do not know the simulator"),
    ("Sim", "Face", "the simulator never imports the command line"),
    # proposed for architecture.json with the rooms above
    ("Console", "Maintenance", "the console reaches the service only through its API"),
    ("Maintenance", "Console", "the service never imports its serial client"),
    ("Maintenance", "Photo", "no photo reaches the console"),
    ("Maintenance", "Sim", "the handlers do not know the parts are simulated"),
    ("Voice", "Capture", "voice hears the session through the state it publishes"),
    ("Capture", "Voice", "the session does not speak: the station gives the voice its state"),
    ("Voice", "Vision", "voice knows no faces"),
    ("Voice", "Sim", "voice does not know it is simulated"),
]

SIM_IMPORTERS = {"kiosk.station"}  # the one place outside kiosk.sim that chooses simulated parts


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the statements inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                inside.update(id(n) for n in ast.walk(stmt))
    return inside


def _imports(name: str, path: Path, modules: dict[str, Path], typing: bool = True) -> set[str]:
    """The kiosk modules a module imports (the most specific existing module of each import);
    without ``typing``, the ones under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    skip = set() if typing else _type_checking_nodes(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from kiosk.x import y` imports the module kiosk.x.y when there is one
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [mod, *subs]
        for t in targets:
            while t and t not in modules:  # `import kiosk.x.y.Attr`-like names: the module part
                t = t.rpartition(".")[0]
            if t.startswith("kiosk") and t != name:
                out.add(t)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Every import, TYPE_CHECKING ones included: what a module knows of."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


@pytest.fixture(scope="module")
def runtime_graph() -> dict[str, set[str]]:
    """The imports that run: what a module loads."""
    modules = _modules()
    return {name: _imports(name, path, modules, typing=False) for name, path in modules.items()}


def _room(module: str) -> str | None:
    for room, prefixes in ROOMS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return room
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_walker_sees_imports_inside_functions_and_type_checking_blocks(graph, runtime_graph):
    # kiosk.service imports the station builder inside Service.__init__ only
    assert "kiosk.station" in graph["kiosk.service"]
    assert "kiosk.sim.printer" in graph["kiosk.station"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    typed = {m for m in graph if graph[m] - runtime_graph[m]}  # modules with TYPE_CHECKING imports
    assert typed, "no TYPE_CHECKING import seen: the walker misses them"


def test_no_import_cycle_among_kiosk_modules(graph):
    assert _cycles(graph) == []


def test_a_cycle_through_a_type_checking_import_counts(tmp_path):
    pkg = tmp_path / "kiosk"
    pkg.mkdir()
    (pkg / "a.py").write_text("from kiosk.b import f\n", encoding="utf-8")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kiosk.a import A\n", encoding="utf-8"
    )
    modules = {"kiosk.a": pkg / "a.py", "kiosk.b": pkg / "b.py"}
    typed = {m: _imports(m, p, modules) for m, p in modules.items()}
    loaded = {m: _imports(m, p, modules, typing=False) for m, p in modules.items()}
    assert _cycles(typed) == [["kiosk.a", "kiosk.b"]]
    assert _cycles(loaded) == []


def test_the_console_is_what_its_commands_need():
    """kiosk.console.commands names what it uses of the console as a Protocol (no import of the
    shell); the shell's Console must still have every member of it."""
    from kiosk.config import ConsoleConfig
    from kiosk.console.commands import CommandHost
    from kiosk.console.shell import Console

    members = set(CommandHost.__annotations__) | {
        n for n, v in vars(CommandHost).items() if callable(v) and not n.startswith("_")
    }
    assert {"call", "say", "ask"} <= members
    console = Console(ConsoleConfig(), client=None, state_dir=None)
    assert sorted(n for n in members if not hasattr(console, n)) == []


def test_every_module_is_in_a_room(graph):
    """A new package or top-level module needs a room (and its pairs) before the rules see it."""
    assert sorted(m for m in graph if m not in UNROOMED and _room(m) is None) == []
    for room, prefixes in ROOMS.items():
        assert any(_room(m) == room for m in graph), f"room {room} ({prefixes}) holds no module"


@pytest.mark.parametrize("room", BASE)
def test_the_base_rooms_import_only_each_other(graph, room):
    bad = sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        if _room(m) == room
        for d in deps
        if d not in UNROOMED and _room(d) not in BASE
    )
    assert bad == [], f"{room} is below the other rooms: {bad}"


def test_only_the_station_imports_the_simulator(graph):
    importers = {
        m for m, deps in graph.items() if _room(m) != "Sim" and any(_room(d) == "Sim" for d in deps)
    }
    assert importers <= SIM_IMPORTERS, sorted(importers - SIM_IMPORTERS)


@pytest.mark.parametrize(("src", "dst", "why"), NEVER, ids=[f"{a}-{b}" for a, b, _ in NEVER])
def test_never_imports(graph, src, dst, why):
    bad = sorted(
        f"{m} -> {d}" for m, deps in graph.items() if _room(m) == src for d in deps if _room(d) == dst
    )
    assert bad == [], f"{why}: {bad}"


def test_the_drivers_need_the_simulated_camera_injected():
    from kiosk.config import HardwareConfig
    from kiosk.hw.camera import CameraError
    from kiosk.hw.cameras import open_camera

    with pytest.raises(CameraError, match="no simulated camera was supplied"):
        open_camera(HardwareConfig(camera="sim"))


class _Built(Exception):
    pass


def test_kiosk_run_and_kiosk_demo_build_the_station_with_the_same_function(tmp_path, monkeypatch):
    """Service (kiosk run) and run_demo (kiosk demo) both wire the station through build_station."""
    import kiosk.station
    from kiosk.config import load_config
    from kiosk.demo import run_demo
    from kiosk.service import Service

    calls: list[tuple[bool, bool]] = []

    def fake_build_station(cfg, sim, clock=None, **kw):
        calls.append((sim, kw.get("realtime", True)))
        raise _Built

    monkeypatch.setattr(kiosk.station, "build_station", fake_build_station)
    cfg = load_config(None, tmp_path / "state")
    with pytest.raises(_Built):
        Service(cfg, sim=False)
    with pytest.raises(_Built):
        run_demo(cfg, tmp_path / "demo")
    assert calls == [(False, True), (True, False)]
