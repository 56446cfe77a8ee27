"""README.md's option table is the one ``docs/build_readme_options.py`` writes from the options' metadata."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.support.scripts import script_module


@pytest.fixture(scope="module")
def builder():
    with script_module(REPO / "docs" / "build_readme_options.py") as module:
        yield module


def test_the_committed_option_table_equals_the_generated_one(builder):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert builder.render(readme) == readme, "run `python docs/build_readme_options.py` to regenerate the table"


def test_every_option_and_weight_flag_is_in_the_table(builder):
    from lipsync_core.engine.plan import option_names

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index(builder.BEGIN):readme.index(builder.END)]
    assert [name for name in option_names() if f"`--{name}" not in table] == []


def test_only_the_text_between_the_markers_changes(builder):
    row = builder.Row("a group", "--flag", 3, "a | b", ("x", "y"))
    out = builder.render(f"before\n{builder.BEGIN}\nold\n{builder.END}\nafter\n", [row])
    assert out == (f"before\n{builder.BEGIN}\n**a group**\n\n| option | default | meaning |\n|---|---|---|\n"
                   f"| `--flag` | `3` | a \\| b; one of `x`, `y` |\n{builder.END}\nafter\n")
