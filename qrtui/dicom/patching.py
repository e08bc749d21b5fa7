"""How qrtui patches pynetdicom: each replaced or relied-on piece is taken through
`original`, which keeps it in `SHAPES` as it was before patching, and replaced through
`install`. tests/test_pynetdicom_fixes.py compares each shape's signature and source with
what was recorded, and names the patch to re-check when a pynetdicom release changes it.

The patches: pynetdicom_fixes.py (defects, written up for pynetdicom in docs/upstream.md),
pynetdicom_speed.py and pynetdicom_reading.py (CPU saved in what is sent and what is read,
each with the figure that kept it).
"""

from __future__ import annotations

from typing import Any

import pynetdicom

WRITTEN_AGAINST = "pynetdicom 3.0.4, pydicom 3.0.2"

# target -> the pynetdicom object a patch replaces or relies on, taken before patching
SHAPES: dict[str, Any] = {}


def original(owner: Any, name: str) -> Any:
    """owner.name as pynetdicom has it, kept in SHAPES; a clear error where it is gone."""
    target = (
        f"{owner.__module__}.{owner.__qualname__}.{name}"
        if isinstance(owner, type)
        else (f"{owner.__name__}.{name}")
    )
    try:
        found = owner.__dict__[name]
    except KeyError:
        raise ImportError(
            f"pynetdicom {pynetdicom.__version__} has no {target}: re-check the patch in "
            f"qrtui/dicom/pynetdicom_*.py (written against {WRITTEN_AGAINST})"
        ) from None
    SHAPES.setdefault(target, found)
    return found


def install(owner: Any, name: str, replacement: Any) -> None:
    """owner.name = replacement, where pynetdicom still has such a name to replace."""
    if not hasattr(owner, name) and not isinstance(owner, type):
        raise ImportError(
            f"pynetdicom {pynetdicom.__version__} has no {owner.__name__}.{name}: re-check the "
            f"patch in qrtui/dicom/pynetdicom_*.py (written against {WRITTEN_AGAINST})"
        )
    setattr(owner, name, replacement)
