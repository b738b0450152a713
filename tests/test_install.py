"""The install story holds together: the README's commands are what CI runs, and the lock files
pin every dependency pyproject.toml names, at versions its lower bounds allow, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    pin = r"(?m)^([A-Za-z0-9_.-]+)==(\S+?)(?: ;[^\\]*)? \\\n"
    entries = re.findall(pin + r"((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)", text)
    assert len(entries) == len(re.findall(r"(?m)^[A-Za-z0-9_.-]+==", text)), f"{lock}: a pin without a hash"
    return {canonicalize_name(name): version for name, version, _ in entries}


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    run, test = readme_commands()
    assert "tierline serve" in run and "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
    for command in (run, test):
        assert "--require-hashes" in command and "--no-deps --no-build-isolation -e ." in command


@pytest.mark.parametrize(("lock", "extras"), [("service.txt", ()), ("dev.txt", ("dev", "grading"))])
def test_the_lock_pins_every_declared_dependency_within_its_bounds(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        declared += [Requirement(r) for r in project["optional-dependencies"][extra]]
    locked = pins(lock)
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements/{lock}"
        assert requirement.specifier.contains(locked[name]), f"{lock} pins {name}=={locked[name]}, not {requirement}"


def test_the_build_tools_are_pinned_alike_for_both_commands() -> None:
    build, dev = pins("build.txt"), pins("dev.txt")
    assert {"setuptools", "wheel"} <= set(build)
    assert {name: dev[name] for name in build} == build


def test_every_package_folder_is_installed() -> None:
    # The editable install finds every folder; a wheel (the container image) holds only what
    # pyproject lists: a sub-package missing there imports in the tests and fails in the image.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for name, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            package = ".".join([name, *init.parent.relative_to(ROOT / folder).parts])
            assert package in listed, f"{package} ({init.parent.relative_to(ROOT)}) is not in pyproject's packages"
