""".ci/run keeps its promises: the README's test command runs verbatim, every other run it makes is one
docs/ci.md describes, and each of those is the whole suite."""

from __future__ import annotations

import re
import subprocess

from tests.support.processes import REPO

CI_RUN = REPO / ".ci" / "run"


def readme_test_command() -> str:
    blocks = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    [command] = [b for b in blocks if "pytest" in b]
    return command


def test_the_readme_test_command_runs_verbatim():
    assert readme_test_command() in CI_RUN.read_text().splitlines()


def test_every_other_run_is_the_whole_suite():
    """``suite NAME PYTHON`` lines give pytest no paths: at most ``--deselect`` of single tests (docs/ci.md)."""
    text = CI_RUN.read_text().replace("\\\n", " ")
    runs = re.findall(r'^suite \S+ (?:"[^"]*"|\S+)(.*)$', text, re.M)  # what follows the interpreter
    assert len(runs) == 3
    for run in runs:
        extra = run.rstrip("& ").split()
        assert all(a == "--deselect" or "::" in a for a in extra), run


def test_every_other_runtime_ci_runs_is_in_docs_ci():
    runs = re.findall(r"^suite (\S+) ", CI_RUN.read_text(), re.M)
    assert {"pypy", "py39", "py313"} <= set(runs)
    doc = (REPO / "docs" / "ci.md").read_text()
    for name in runs:
        assert f"`{name}`" in doc, f"docs/ci.md does not describe the {name} run"


def test_ci_run_parses():
    subprocess.run(["bash", "-n", str(CI_RUN)], check=True)
