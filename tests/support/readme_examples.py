"""The docs' runnable examples: the fenced blocks right after an ``<!-- README example … -->`` line.

They live in the README and in the pages of ``docs/`` (:func:`doc_files`); the marker keeps its
name wherever its block moved.  Run as ``python -m tests.support.readme_examples FILE INDEX`` it
runs FILE's INDEX-th block as a doctest (``...`` matches anything) in this process, exiting
non-zero on a mismatch.
"""

from __future__ import annotations

import doctest
import re
import sys
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r"<!-- README example:[^>]*-->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.DOTALL)


@dataclass(frozen=True)
class Example:
    lang: str
    body: str
    line: int


def doc_files(repo: Path) -> list[Path]:
    """The files whose examples are run: the README, then every page of ``docs/`` by name."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def examples(doc: Path) -> list[Example]:
    text = doc.read_text()
    return [
        Example(m.group("lang"), m.group("body"), text.count("\n", 0, m.start()) + 1) for m in _BLOCK.finditer(text)
    ]


def run_doctest(doc: Path, index: int) -> int:
    example = examples(doc)[index]
    test = doctest.DocTestParser().get_doctest(example.body, {}, f"{doc.name} example {index}", str(doc), example.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    return 1 if failed or not attempted else 0


if __name__ == "__main__":
    sys.exit(run_doctest(Path(sys.argv[1]), int(sys.argv[2])))
