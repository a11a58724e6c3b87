"""The pipeline runs one way: no module imports one of a later stage (imports inside functions too)."""

from __future__ import annotations

import ast

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "hybridrec"
# stages in pipeline order; a module may import its own stage and earlier ones only
STAGES = [
    ("constants", "errors", "io", "config", "store", "gemini", "runs"),  # shared utilities
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
    ("api", "ab", "cli", "cli_args", "python_api"),  # ab: experiments in the service and their CLI
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


def test_every_imported_package_is_declared():
    """What the code imports is in pyproject.toml (main dependencies for src/, the dev extra too for
    tests/): an undeclared import works here by accident and fails on a fresh machine."""
    import importlib.metadata
    import re
    import sys
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements) -> set[str]:
        return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    main = names(project["dependencies"])
    dev = (
        main
        | names(project["optional-dependencies"]["dev"])
        | names(project["optional-dependencies"]["bench"])
    )
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    local = {"hybridrec"} | {
        p.stem for folder in ("tests", "benchmarks") for p in (REPO_ROOT / folder).glob("*.py")
    }
    for folder, declared in ((PACKAGE, main), (REPO_ROOT / "tests", dev)):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = []
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules = [node.module]
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    owners = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                    if not owners & declared:
                        missing.add(f"{path.relative_to(REPO_ROOT)} imports {top}")
    assert not missing, f"pyproject.toml does not declare what these import: {sorted(missing)}"
