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
