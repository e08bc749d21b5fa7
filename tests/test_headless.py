"""The core never imports Textual: only qrtui.tui may."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import qrtui


def core_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(qrtui.__path__, "qrtui.")
        if not m.name.startswith("qrtui.tui") and m.name != "qrtui.__main__"
    ]


def test_core_does_not_import_textual():
    modules = core_modules()
    assert "qrtui.config" in modules and "qrtui.cli" in modules and "qrtui.dicom.echo" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"core imported {result.stdout.strip()}"


def _imports(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_screens_use_the_core_not_dicom_and_never_import_the_app():
    """One way round: the app imports the screens; the screens reach the network through
    qrtui.worker and its events, never qrtui.dicom (not even for types)."""
    from pathlib import Path

    tui = Path(qrtui.__file__).parent / "tui"
    modules = [p for p in tui.rglob("*.py") if p.name != "app.py"]
    assert len(modules) >= 8
    for path in modules:
        imported = _imports(path)
        assert "qrtui.tui.app" not in imported, path
        assert not any(m.startswith("qrtui.dicom") for m in imported), path


def test_no_module_is_longer_than_450_lines():
    """Modules of about 400 lines at most: the next growth is noticed here."""
    from pathlib import Path

    root = Path(qrtui.__file__).parent
    long = {
        str(path.relative_to(root)): n
        for path in root.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 450
    }
    assert not long, f"split these along their seams: {long}"


def test_every_package_says_what_it_is_for():
    import ast
    from pathlib import Path

    root = Path(qrtui.__file__).parent
    packages = [p for p in root.rglob("__init__.py")]
    assert len(packages) >= 10
    for path in packages:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, path


def test_meaning_and_keeping_import_nothing_above_them():
    """selection is pure; dose reads what it is given; config keeps to itself (layers.md)."""
    from pathlib import Path

    root = Path(qrtui.__file__).parent
    allowed = {"selection": {"qrtui.selection"}, "dose": {"qrtui.dose", "qrtui.selection"},
               "config": {"qrtui.config"}}  # fmt: skip
    for package, may in allowed.items():
        for path in (root / package).rglob("*.py"):
            ours = {m for m in _imports(path) if m.startswith("qrtui")}
            above = {m for m in ours if not any(m == a or m.startswith(a + ".") for a in may)}
            assert not above, (path, above)
        if package == "selection":
            outside = {m for p in (root / package).rglob("*.py") for m in _imports(p)}
            assert not {m for m in outside if m.split(".")[0] in ("pydicom", "pynetdicom")}
