"""The parts of docs/ generated from the code, so that they cannot drift from it: each lives
between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a Markdown file, and
`aiops docs` rewrites it (`--check`: says which are stale; a test runs that check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from aiops import settings
from aiops.loops import chaos_machine
from aiops.loops.incident import machine


def _mermaid(render: Callable[[], str]) -> Callable[[], str]:
    return lambda: f"```mermaid\n{render()}```\n"


SECTIONS: Mapping[str, Mapping[str, Callable[[], str]]] = {
    "architecture.md": {"incident-states": _mermaid(machine.mermaid)},
    "chaos.md": {"chaos-states": _mermaid(chaos_machine.mermaid)},
    "settings.md": {"settings": settings.markdown},
}
"""Per file (relative to docs/), its generated sections and what writes each."""


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(<!-- /generated:{re.escape(name)} -->)",
        re.DOTALL,
    )


def render(text: str, sections: Mapping[str, Callable[[], str]]) -> str:
    """`text` with each section's block rewritten; ValueError names a missing marker."""
    for name, make in sections.items():
        block = _block(name)
        if not block.search(text):
            raise ValueError(f"no <!-- generated:{name} --> ... <!-- /generated:{name} --> block")
        body = make()

        def replace(m: re.Match[str], body: str = body) -> str:
            return m.group(1) + body + m.group(3)

        text = block.sub(replace, text)
    return text


def stale(docs: Path) -> list[str]:
    """The files under `docs` whose generated sections differ from what the code generates."""
    out = []
    for rel, sections in SECTIONS.items():
        text = (docs / rel).read_text(encoding="utf-8")
        if render(text, sections) != text:
            out.append(rel)
    return out


def write(docs: Path) -> list[str]:
    """Brings the generated sections under `docs` up to date; returns the files it changed."""
    changed = stale(docs)
    for rel in changed:
        path = docs / rel
        path.write_text(render(path.read_text(encoding="utf-8"), SECTIONS[rel]), encoding="utf-8")
    return changed
