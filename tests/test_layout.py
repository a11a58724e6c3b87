"""The pipeline runs one way: no module imports one of a later stage (imports inside functions too)."""

from __future__ import annotations

import ast

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "hybridrec"
# stages in pipeline order; a module may import its own stage and earlier ones only
STAGES = [
    ("constants", "errors", "io", "config", "store", "gemini"),  # shared utilities
    ("data",),
    ("embedders",),
    ("metrics",),
    ("models",),
    ("bundle", "tracking"),
    ("training",),
    ("evaluation", "sweep"),
    ("inference",),
    ("explain",),
    ("service",),
    ("api", "cli", "cli_args"),
]
STAGE = {name: rank for rank, names in enumerate(STAGES) for name in names}


def _imports(path) -> set[str]:
    """The top-level hybridrec parts a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("hybridrec.")}
    return found


def test_no_import_runs_back_up_the_pipeline():
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part == "__init__":
            continue
        assert part in STAGE, f"{part} has no stage in STAGES"
        for imported in _imports(path):
            if STAGE[imported] > STAGE[part]:
                backwards.append(f"{path.relative_to(PACKAGE)} imports hybridrec.{imported}")
    assert not backwards, backwards
