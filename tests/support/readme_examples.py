"""The README's runnable examples: the fenced blocks right after an ``<!-- README example … -->`` line.

Run as ``python -m tests.support.readme_examples README.md INDEX`` it runs the INDEX-th Python
block as a doctest (``...`` matches anything) in this process, exiting non-zero on a mismatch.
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


def examples(readme: Path) -> list[Example]:
    text = readme.read_text()
    return [
        Example(m.group("lang"), m.group("body"), text.count("\n", 0, m.start()) + 1) for m in _BLOCK.finditer(text)
    ]


def run_doctest(readme: Path, index: int) -> int:
    example = examples(readme)[index]
    test = doctest.DocTestParser().get_doctest(example.body, {}, f"README example {index}", str(readme), example.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    return 1 if failed or not attempted else 0


if __name__ == "__main__":
    sys.exit(run_doctest(Path(sys.argv[1]), int(sys.argv[2])))
