"""A tiny document model rendered to both Markdown and HTML, so the two never drift apart.

The report is built as a list of blocks (heading, paragraph, bullet list, table, image); Markdown and
HTML are two renderings of the same blocks. No Markdown package is needed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:0.8rem 0;font-size:0.9rem}
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left}th{background:#f3f3f3}
img{max-width:100%;border:1px solid #eee}code{background:#f3f3f3;padding:0 0.2rem}"""


class Block(Protocol):
    def markdown(self) -> str: ...
    def html(self) -> str: ...


def _inline(text: str) -> str:
    """Escape text for HTML, keeping `code` spans and **bold**."""
    return _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", html.escape(text)))


@dataclass(frozen=True)
class Heading:
    level: int
    text: str

    def markdown(self) -> str:
        return "#" * self.level + " " + self.text

    def html(self) -> str:
        return f"<h{self.level}>{_inline(self.text)}</h{self.level}>"


@dataclass(frozen=True)
class Paragraph:
    text: str

    def markdown(self) -> str:
        return self.text

    def html(self) -> str:
        return f"<p>{_inline(self.text)}</p>"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]

    def markdown(self) -> str:
        return "\n".join(f"- {item}" for item in self.items)

    def html(self) -> str:
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in self.items) + "</ul>"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(map(cell, self.header)) + " |", "|" + " --- |" * len(self.header)]
        return "\n".join(lines + ["| " + " | ".join(map(cell, r)) + " |" for r in self.rows])

    def html(self) -> str:
        head = "".join(f"<th>{_inline(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class Image:
    alt: str
    src: str  # relative to the report file

    def markdown(self) -> str:
        return f"![{self.alt}]({self.src})"

    def html(self) -> str:
        return f'<p><img src="{html.escape(self.src, quote=True)}" alt="{html.escape(self.alt, quote=True)}"></p>'


@dataclass
class Document:
    """Blocks of a report; ``to_markdown`` and ``to_html`` render the same content."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def bullets(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(Bullets(tuple(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(str(c) for c in r) for r in rows)))

    def image(self, alt: str, src: str) -> None:
        self.blocks.append(Image(alt, src))

    def to_markdown(self) -> str:
        return "\n\n".join([f"# {self.title}", *(b.markdown() for b in self.blocks)]) + "\n"

    def to_html(self) -> str:
        body = "\n".join(b.html() for b in self.blocks)
        title = html.escape(self.title)
        return (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
        )
