""".ci/run keeps its promises: the README's test command, verbatim, is the first suite it runs, and every other
run it makes is one docs/ci.md describes."""

from __future__ import annotations

import re
import subprocess

from tests.support.processes import REPO

CI_RUN = REPO / ".ci" / "run"


def readme_test_command() -> str:
    blocks = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    [command] = [b for b in blocks if "pytest" in b]
    return command


def test_the_readme_test_command_is_the_first_suite_ci_runs():
    lines = CI_RUN.read_text().splitlines()
    first = next(line for line in lines if "pytest" in line and not line.lstrip().startswith("#"))
    assert first == readme_test_command()


def test_every_other_runtime_ci_runs_is_in_docs_ci():
    runs = re.findall(r"^suite (\S+) ", CI_RUN.read_text(), re.M)
    assert {"pypy", "py39", "py313"} <= set(runs)
    doc = (REPO / "docs" / "ci.md").read_text()
    for name in runs:
        assert f"`{name}`" in doc, f"docs/ci.md does not describe the {name} run"


def test_ci_run_parses():
    subprocess.run(["bash", "-n", str(CI_RUN)], check=True)
