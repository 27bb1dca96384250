"""The report's document: one builder writes every block both as HTML and as Markdown, then wraps them in a page.

The HTML page carries its CSS inline and a Content-Security-Policy that forbids scripts and anything remote;
figures are embedded as base64 PNG (and kept as files for the Markdown). Every string is escaped here, on
output, so the sections pass data strings as they are.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tailtune import __version__
from tailtune.data.visible import printed_label
from tailtune.markdown import escape_label_md, escape_md, keep_spaces

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1f2328; line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
  sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 2rem 2rem 3rem; background: #fff; min-height: 100vh;
  box-shadow: 0 0 0 1px #eaecef; }
h1 { font-size: 1.75rem; margin: 0 0 .25rem; letter-spacing: -.01em; }
h2 { font-size: 1.3rem; margin: 2.6rem 0 .8rem; padding-bottom: .35rem; border-bottom: 1px solid #d8dee4; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
p { margin: .5rem 0; }
ul { margin: .4rem 0; padding-left: 1.3rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em;
  background: #f2f4f7; padding: .05rem .3rem; border-radius: 4px; }
.meta, .note, figcaption { color: #59636e; font-size: .9rem; }
nav { margin: 1.2rem 0 0; padding: .7rem 1rem; background: #f6f8fa; border: 1px solid #e4e7eb;
  border-radius: 6px; font-size: .9rem; }
nav { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
nav a { color: #2f5d9e; text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
.table-wrap { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dfe3e8; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; white-space: nowrap; }
td.nw { white-space: nowrap; }
td.text { max-width: 34rem; overflow-wrap: anywhere; }
td strong { color: #17457c; }
details { margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; padding: .25rem 0; }
figure { margin: .8rem 0 1.4rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eef0f3; border-radius: 4px; }
figcaption { margin-top: .35rem; }
footer { margin-top: 3rem; padding-top: .8rem; border-top: 1px solid #eaecef; color: #8c959f;
  font-size: .82rem; }
"""

# Defence in depth: even if some string escaped escaping, the page may load no script and nothing remote.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _escape_html(text: object) -> str:
    """Escape a data string for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def _slug(text: str) -> str:
    """A lower-case ``a-z0-9-`` form of ``text`` for anchors and file names (never empty)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class Cell:
    """A table cell: plain text (escaped on output), optionally right-aligned as a number or in bold."""

    text: str
    numeric: bool = False
    strong: bool = False
    wide: bool = False
    label: bool = False  # a label name: kept apart from names that differ only in white space (escape_label_md)

    def html(self) -> str:
        """The cell's text as HTML."""
        if not self.label:
            return _escape_html(self.text)
        return keep_spaces(_escape_html(printed_label(self.text)))

    def markdown(self) -> str:
        """The cell's text as Markdown."""
        return escape_label_md(self.text) if self.label else escape_md(self.text)


@dataclass
class Document:
    """Accumulates the same content as HTML and as Markdown."""

    files_dir: str
    html_parts: list[str] = field(default_factory=list)
    md_parts: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def section(self, title: str) -> None:
        """Start a section, listed in the page's navigation."""
        anchor = _slug(title)
        self.toc.append((anchor, title))
        self.html_parts.append(f'<h2 id="{_escape_html(anchor)}">{_escape_html(title)}</h2>')
        self.md_parts.append(f"## {escape_md(title)}\n")

    def subsection(self, title: str) -> None:
        """Start a subsection."""
        self.html_parts.append(f"<h3>{_escape_html(title)}</h3>")
        self.md_parts.append(f"### {escape_md(title)}\n")

    def open_details(self, title: str) -> None:
        """Start a block that HTML shows folded (a heading in Markdown); end it with close_details."""
        self.html_parts.append(f"<details><summary>{_escape_html(title)}</summary>")
        self.md_parts.append(f"### {escape_md(title)}\n")

    def close_details(self) -> None:
        """End the block started by open_details."""
        self.html_parts.append("</details>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        """Add a paragraph; a note is set smaller in HTML and in italics in Markdown."""
        css = ' class="note"' if note else ""
        self.html_parts.append(f"<p{css}>{_escape_html(text)}</p>")
        self.md_parts.append(f"{'*' if note else ''}{escape_md(text)}{'*' if note else ''}\n")

    def bullets(self, items: list[str]) -> None:
        """Add a bulleted list."""
        self.html_parts.append("<ul>" + "".join(f"<li>{_escape_html(item)}</li>" for item in items) + "</ul>")
        self.md_parts.append("".join(f"- {escape_md(item)}\n" for item in items))

    def table(self, header: list[str], rows: list[list[Cell | str]]) -> None:
        """Add a table; a column whose cells are all numeric is right-aligned, header included."""
        cells = [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in rows]
        numeric = [bool(cells) and all(row[i].numeric for row in cells) for i in range(len(header))]
        head = "".join(
            f'<th style="text-align:right">{_escape_html(h)}</th>' if numeric[i] else f"<th>{_escape_html(h)}</th>"
            for i, h in enumerate(header)
        )
        body = []
        for row in cells:
            tds = []
            for cell in row:
                # Short names stay on one line; long texts and paths may wrap.
                css = "num" if cell.numeric else "text" if cell.wide else "nw" if len(cell.text) <= 24 else ""
                content = f"<strong>{cell.html()}</strong>" if cell.strong else cell.html()
                tds.append(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        self.html_parts.append(
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        )
        md = ["| " + " | ".join(escape_md(h) for h in header) + " |"]
        md.append("|" + "|".join("---:" if numeric[i] else "---" for i in range(len(header))) + "|")
        for row in cells:
            md.append("| " + " | ".join(f"**{c.markdown()}**" if c.strong else c.markdown() for c in row) + " |")
        self.md_parts.append("\n".join(md) + "\n")

    def figure(self, name: str, png: bytes, alt: str, caption: str) -> None:
        """Add a figure: embedded in HTML, and kept in ``images`` for the Markdown to link to."""
        filename = f"{len(self.images) + 1:02d}-{_slug(name)}.png"
        self.images[filename] = png
        data = base64.b64encode(png).decode("ascii")
        self.html_parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_escape_html(alt)}">'
            f"<figcaption>{_escape_html(caption)}</figcaption></figure>"
        )
        self.md_parts.append(f"![{escape_md(alt)}]({self.files_dir}/{filename})\n\n*{escape_md(caption)}*\n")

    def render(self, root: Path, facts: str) -> tuple[str, str]:
        """Wrap the content in a page: title, header, navigation and footer.

        Args:
            root: The folder the runs were read from, shown in the header and footer.
            facts: One line about the runs, shown under the title.

        Returns:
            The HTML page and the Markdown text.
        """
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(f'<a href="#{_escape_html(anchor)}">{_escape_html(title)}</a>' for anchor, title in self.toc)
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>tailtune report: {_escape_html(root.name or root)}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            "<header><h1>tailtune report</h1>\n"
            f'<p class="meta"><code>{_escape_html(root)}</code> · generated {generated}</p>\n'
            f'<p class="meta">{_escape_html(facts)}</p></header>\n<nav>{nav}</nav>\n'
            + "\n".join(self.html_parts)
            + f"\n<footer>tailtune {_escape_html(__version__)}. Everything above was read from the run directories "
            f"under <code>{_escape_html(root)}</code>.</footer>\n</main>\n</body>\n</html>\n"
        )
        markdown = (
            f"# tailtune report\n\n`{str(root).replace('`', '')}` · generated {generated}\n\n{escape_md(facts)}\n\n"
            + "\n".join(self.md_parts)
        )
        return page, markdown
