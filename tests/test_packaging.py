"""What an install of awmctl declares: its version in one place, every third-party package its
code imports, and the marker that says it is typed."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import awmctl

ROOT = Path(__file__).parents[1]


def test_the_version_is_written_once_and_the_install_reports_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("awmctl") == awmctl.__version__


def test_every_third_party_package_the_code_imports_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # a dependency, or an extra the code imports only when asked to (wandb for --wandb); the
    # test extra's packages are no user's dependency
    extras = [
        r for name, rs in project["optional-dependencies"].items() if name != "test" for r in rs
    ]
    declared = {
        re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0].lower()
        for requirement in [*project["dependencies"], *extras]
    }
    imported = set()
    for path in (ROOT / "awmctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"awmctl", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    missing = {
        name
        for name in third_party
        if not {d.lower() for d in distributions.get(name, [name])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_the_package_says_it_is_typed():
    assert (Path(awmctl.__file__).parent / "py.typed").is_file()


def test_the_projects_files_name_only_the_projects_files():
    # The design notes the project started from live outside the repository.
    outside = re.compile("shared/" + r"(spec|design|style)")
    named = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("awmctl", "tests", "benchmarks", "docs")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".md", ".sh", ".toml")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    named += [
        f"README.md:{n}"
        for n, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert not named, f"files outside the repository named at: {named}"


def test_the_lock_pins_every_dependency_at_a_version_the_floors_allow():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    needed = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    for text in needed:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in .ci/constraints.txt: run make lock"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])
    # what the suite runs with is what the lock says
    for text in project["dependencies"]:
        name = canonicalize_name(Requirement(text).name)
        assert importlib.metadata.version(name) == pins[name], name
