"""The repository carries its own facts: nothing in it refers to a file outside it, and every
section of docs/facts.md or the README that it cites exists."""

from __future__ import annotations

import re

from conftest import REPO

# What a reference outside the repository looks like (spelled in two pieces, so that this file
# does not match itself).
OUTSIDE = ("FACTS" + ".md", "../" + "shared")
TREES = ("src", "tests", "workflow", "rules", "config", "profiles", "benchmarks", "docs")
TOP_FILES = ("Snakefile", "Makefile", "pyproject.toml", "README.md")


def text_files():
    for tree in TREES:
        for path in sorted((REPO / tree).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".smk", ".yaml", ".md", ".rst", ".sh"}:
                yield path
    yield from (REPO / name for name in TOP_FILES)


def test_nothing_refers_outside_the_repository():
    found = [
        f"{path.relative_to(REPO)}: {needle}"
        for path in text_files()
        for needle in OUTSIDE
        if needle in path.read_text()
    ]
    assert found == []


def test_every_cited_section_of_the_facts_page_exists():
    headings = set(re.findall(r"^## (.+)$", (REPO / "docs" / "facts.md").read_text(), re.M))
    cited = {
        (path.relative_to(REPO), section)
        for path in text_files()
        for section in re.findall(r'docs/facts\.md,?\s+"([^"]+)"', path.read_text())
    }
    assert len(cited) >= 8
    assert [(str(path), s) for path, s in sorted(cited) if s not in headings] == []


def test_every_cited_section_of_the_readme_exists():
    headings = set(re.findall(r"^##+ (.+)$", (REPO / "README.md").read_text(), re.M))
    cited = {
        (str(path.relative_to(REPO)), section)
        for path in text_files()
        if path.name != "README.md"
        for section in re.findall(r'README,?\s+(?:section\s+)?"([^"]+)"', path.read_text())
    }
    assert ("profiles/slurm/config.yaml", "On a SLURM cluster") in cited
    assert sorted(c for c in cited if c[1] not in headings) == []


def test_ci_lints_then_tests_with_the_readmes_commands():
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("make ")
    ]
    assert commands == ["make lint", "make test"]
    readme = (REPO / "README.md").read_text()
    assert "make run " in readme and "make test " in readme
    targets = re.findall(r"^(\w+):", (REPO / "Makefile").read_text(), re.M)
    assert {"run", "test", "lint"} <= set(targets)
