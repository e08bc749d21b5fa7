"""The documents name tests as proof of what they state: every named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_selection_rules_name_exists():
    doc = (ROOT / "docs" / "selection-rules.md").read_text()
    named = set(re.findall(r"\btest_\w+", doc)) - {
        name.removesuffix(".py") for name in re.findall(r"\btest_\w+\.py", doc)
    }
    defined = {
        match
        for path in (ROOT / "tests").glob("test_*.py")
        for match in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M)
    }
    assert len(named) > 40
    assert named <= defined, sorted(named - defined)


def test_the_readme_links_the_selection_rules():
    assert "docs/selection-rules.md" in (ROOT / "README.md").read_text()


def test_the_architecture_names_files_that_exist_and_the_readme_links_it():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`(qrtui/[\w/.]+)", doc)) | {
        f"qrtui/{m}"
        for m in re.findall(
            r"`((?:cli|worker|funnel|retrieve|dicom|store|selection|dose|config|tui)/[\w/.]+\.py)",
            doc,
        )
    }
    assert len(named) > 20
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing
    readme = (ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme and "docs/upstream.md" in readme
