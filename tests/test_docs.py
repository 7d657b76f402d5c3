"""Run every ```python block of the documentation, so the docs cannot drift from the code.

Pages are found by a glob (docs/*.md, plus README.md when it exists): a new page is tested
without touching this file. The blocks of one page run in order in one namespace, so a
later block can use names from an earlier one; blocks fenced as ```bash, ```text and so on
are only shown. A block fails the test when it raises, and the report names the page,
the block and the line in the Markdown file.

The pages are for users who ran only the README's main install: pytest and hypothesis (the
`test` extra) cannot be imported by a block, unless its first line says it needs them
(`# needs the test extra`).
"""
from __future__ import annotations

import contextlib
import re
import sys
import traceback
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from tinygrad_cnn.autograd.function import Primitive

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(ROOT.glob("docs/*.md")) + [p for p in [ROOT / "README.md"] if p.exists()]
RUN_LANGUAGES = {"python", "py"}
NEEDS_TEST_EXTRA = "# needs the test extra"
TEST_EXTRA_MODULES = ("pytest", "hypothesis")

# An opening fence: any indent (fences inside list items are indented), three or more
# backticks or tildes, then the language.
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


class Block(NamedTuple):
    number: int  # 1-based among the page's python blocks
    line: int  # line of the first code line in the Markdown file (1-based)
    code: str


def python_blocks(text: str) -> list[Block]:
    """The fenced python blocks of a Markdown text, dedented by their fence's indent."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].lower()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body, j = [], i + 1
        while j < len(lines) and not closing.match(lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed code fence opened at line {i + 1}")
        if info in RUN_LANGUAGES:
            blocks.append(Block(len(blocks) + 1, i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def test_python_blocks_parser():
    """The parser finds python blocks (not others) and their line numbers."""
    text = ("# Title\n"
            "```python\nx = 1\n```\n"
            "```bash\nexit 1\n```\n"
            "- item\n\n  ```python\n  y = x + 1\n  ```\n"
            "````text\n```python\nnot code\n```\n````\n")
    blocks = python_blocks(text)
    assert [(b.number, b.line, b.code) for b in blocks] == [(1, 3, "x = 1\n"), (2, 11, "y = x + 1\n")]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Blocks run in a temporary directory with a non-interactive plotting backend, and ops
    they define do not stay in Primitive.registry for the rest of the test session."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if "matplotlib" in sys.modules:  # already imported by another test: the variable comes too late
        sys.modules["matplotlib"].use("Agg")
    registry = dict(Primitive.registry)
    yield
    Primitive.registry.clear()
    Primitive.registry.update(registry)
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@contextlib.contextmanager
def without_test_extra() -> Iterator[None]:
    """`import pytest` and `import hypothesis...` raise ImportError inside the block, as after the
    main install (a None in sys.modules makes the import fail)."""
    hidden = {name: module for name, module in sys.modules.items()
              if name.split(".")[0] in TEST_EXTRA_MODULES}
    sys.modules.update({name: None for name in hidden} | {name: None for name in TEST_EXTRA_MODULES})
    try:
        yield
    finally:
        for name in TEST_EXTRA_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(hidden)


def run_page(page: Path, name: str) -> None:
    """Run the page's python blocks in order in one namespace; fail naming `name`, the block
    that raised and its line."""
    namespace = {"__name__": "__doc_page__"}
    for block in python_blocks(page.read_text(encoding="utf-8")):
        # leading newlines make tracebacks show the Markdown file's own line numbers
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        extras = contextlib.nullcontext() if block.code.startswith(NEEDS_TEST_EXTRA) else without_test_extra()
        try:
            with extras:
                exec(code, namespace)
        except Exception as e:
            trace = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        else:
            continue
        # outside the except clause, so the report does not chain this test's own traceback
        pytest.fail(f"{name}: python block {block.number} (starting at line {block.line}) raised "
                    f"{error}\n\n{trace}", pytrace=False)


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=[page_name(p) for p in PAGES])
def test_page_runs(page: Path, isolated):
    run_page(page, page_name(page))


def test_a_raising_block_fails_and_is_located(tmp_path, isolated):
    """Blocks share a namespace and run in the temporary directory; the first one that raises
    fails the test, and the report names the page, the block and the Markdown line."""
    page = tmp_path / "broken.md"
    page.write_text("Intro\n\n"
                    "```python\nimport os\nx = 1\nopen('written.txt', 'w').write('x')\n"
                    "assert os.environ['MPLBACKEND'] == 'Agg'\n```\n\n"
                    "```python\nassert x == 2, 'x is not 2'\n```\n\n"
                    "```python\nopen('never.txt', 'w').write('x')\n```\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        run_page(page, "broken.md")
    message = str(failure.value)
    assert "broken.md: python block 2 (starting at line 11) raised AssertionError: x is not 2" in message
    assert 'broken.md", line 11' in message  # the traceback points into the Markdown file
    assert (tmp_path / "written.txt").exists() and not (ROOT / "written.txt").exists()
    assert not (tmp_path / "never.txt").exists()  # nothing runs after the failing block


def test_blocks_cannot_import_the_test_extra_unless_they_say_so(tmp_path, isolated):
    page = tmp_path / "page.md"
    page.write_text("```python\nimport numpy\n```\n\n```python\nimport pytest\n```\n")
    with pytest.raises(pytest.fail.Exception, match="block 2 .* raised ModuleNotFoundError"):
        run_page(page, "page.md")
    page.write_text("```python\nfrom hypothesis import strategies\n```\n")
    with pytest.raises(pytest.fail.Exception, match="raised ModuleNotFoundError"):
        run_page(page, "page.md")
    page.write_text(f"```python\n{NEEDS_TEST_EXTRA}\nimport pytest\nfrom hypothesis import given\n```\n")
    run_page(page, "page.md")
    import hypothesis.strategies  # noqa: F401 (the test session's own imports still work afterwards)
