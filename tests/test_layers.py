"""The house's rooms lean only on rooms below them (issue 11).

Every ``import`` of an rtcheck module inside ``src/rtcheck`` (module-level or inside a
function: a lazy import is still a dependency) is read with :mod:`ast` and checked against
:data:`ROOMS`: a module may import from its own room or from a room of a lower floor, never
from above. And no module imports another module's private name (``from x import _y``).
To add a module or a package, give it a floor here: the map in the README says the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rtcheck"

#: room (first component under rtcheck) -> floor. Lower floors never import higher ones.
ROOMS: dict[str, int] = {
    "errors": 0, "files": 0, "lazy": 0, "tomlfile": 0, "radiobiology": 0, "model": 1,
    "dose": 2, "dicom": 2, "geometry": 2,
    "dvh": 3, "accumulation": 3,
    "rules": 4,
    "checker": 5, "case": 5,
    "report": 6,
    "batch": 7, "dicomweb": 7,
    "serve": 8,
    "cli": 9,
    # the package's own door: the lazy public API and ``python -m rtcheck``
    "__init__": 10, "__main__": 10,
}
#: Applications on top of the library may use the public API of the door (``from rtcheck
#: import check``); the library's own rooms import the module that defines a name.
APPLICATIONS = {"serve", "cli"}


def room_of(module: str) -> str:
    """``rtcheck.checker.run`` -> ``checker``; ``rtcheck`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        found.append((name, path))
    return found


def imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported rtcheck module, names taken from it, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("rtcheck")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "rtcheck":  # ``from rtcheck import dvh`` names a sub-module
                for a in node.names:
                    sub = f"rtcheck.{a.name}"
                    if (SRC / a.name).is_dir() or (SRC / f"{a.name}.py").is_file():
                        out.append((sub, [], node.lineno))
                    elif a.name != "__version__":  # the version is no dependency
                        out.append(("rtcheck", [a.name], node.lineno))
            elif target.startswith("rtcheck"):
                out.append((target, [a.name for a in node.names], node.lineno))
    return out


def test_every_module_has_a_room():
    unknown = sorted({room_of(m) for m, _ in modules()} - set(ROOMS))
    assert not unknown, f"give these rooms a floor in ROOMS (and a line in the README map): {unknown}"


def test_rooms_lean_only_on_rooms_below():
    wrong = []
    for module, path in modules():
        mine = room_of(module)
        for target, _, line in imports(path, module):
            theirs = room_of(target)
            if theirs == mine or theirs not in ROOMS:
                continue
            if theirs == "__init__" and mine in APPLICATIONS:
                continue
            if ROOMS[theirs] > ROOMS[mine]:
                wrong.append(f"{path.relative_to(SRC.parent)}:{line}: {mine} (floor "
                             f"{ROOMS[mine]}) imports {target} (floor {ROOMS[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_runtime_does_not_import_test_support_or_scipy():
    # the synthetic phantoms and archive builders live in tests/support, and scipy (which
    # only they and the tests use) is not a runtime dependency (issue 11)
    wrong = []
    for module, path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.relative_to(SRC.parent)}:{node.lineno}: imports {n}"
                      for n in names if n.split(".")[0] in ("support", "tests", "conftest", "scipy")]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    wrong = []
    for module, path in modules():
        for target, names, line in imports(path, module):
            if target == module:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                wrong.append(f"{path.relative_to(SRC.parent)}:{line}: from {target} import "
                             f"{', '.join(private)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", ["rtcheck.cli.common", "rtcheck.checker.run"])
def test_the_reader_sees_lazy_imports(module):
    # a function-level import is a dependency too: the check must see them
    path = dict(modules())[module]
    assert any(t.startswith("rtcheck.") for t, _, _ in imports(path, module))
