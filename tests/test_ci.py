"""CI runs exactly the README's test command, so what a contributor runs is what CI checks."""
from __future__ import annotations

import re

from tests.conftest import REPO


def readme_test_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"Run the tests \(what CI runs, `\.ci/run`\):\n\n```bash\n(.+)\n```", readme)
    assert m, "README.md lost its 'Run the tests' block"
    return m.group(1)


def test_ci_runs_the_readme_test_command():
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert lines[-1] == readme_test_command()

