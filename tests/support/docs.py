"""The documentation as a reader gets it: the built pages, the README, their code blocks."""

import builtins
import subprocess
import symtable
import sys
import textwrap
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from tests.support.http_client import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.rst"

#: The highlight classes of Python code in Sphinx's HTML.
PYTHON_LANGUAGES = frozenset({"python", "python3", "py"})

#: A ``::`` block: Sphinx highlights it as Python if it parses, else as text.
UNNAMED_LANGUAGE = "default"

#: A caption saying that a block is part of a complete example the reader can
#: download: the complete file is the caption's download link.
EXCERPT = "Excerpt from"


@dataclass
class CodeBlock:
    """One code block as the reader sees it."""

    where: str  # the page, and the block's place on it
    language: str
    text: str
    caption: str = ""
    #: the downloadable file the caption links to, if any
    download: Path | None = None

    @property
    def is_excerpt(self) -> bool:
        return self.caption.startswith(EXCERPT)


def build_html(out: Path) -> Path:
    """Build the docs as CI and Read the Docs do (nitpicky, warnings as errors).

    Returns the HTML directory; a warning fails with Sphinx's output.
    """
    html = out / "html"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html"),
            *("-d", str(out / "doctrees"), str(DOCS), str(html)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the docs do not build cleanly:\n{result.stdout}{result.stderr}")
    return html


class _CodeBlockParser(HTMLParser):
    """Collects ``<div class="highlight-LANG">`` blocks and their captions."""

    def __init__(self, page: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.blocks: list[CodeBlock] = []
        self._caption: list[str] | None = None
        self._caption_done = ("", None)
        self._caption_depth = 0
        self._download: Path | None = None
        self._language: str | None = None
        self._in_pre = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._caption is not None:
            self._caption_depth += tag == "div"
            href = dict(attrs).get("href")
            if tag == "a" and "download" in classes and href:
                self._download = (self.page.parent / href).resolve()
            if tag == "a" and "headerlink" in classes:
                self._caption_depth = -100  # the pilcrow is not caption text
            return
        if tag == "div" and "code-block-caption" in classes:
            self._caption, self._caption_depth, self._download = [], 0, None
        for name in classes:
            if tag == "div" and name.startswith("highlight-"):
                self._language = name[len("highlight-") :]
        if tag == "pre" and self._language is not None:
            self._in_pre, self._text = True, []

    def handle_endtag(self, tag: str) -> None:
        if self._caption is not None:
            if tag == "a" and self._caption_depth < 0:
                self._caption_depth = 0
            elif tag == "div":
                if self._caption_depth == 0:
                    text = " ".join("".join(self._caption).split())
                    self._caption_done = (text, self._download)
                    self._caption = None
                else:
                    self._caption_depth -= 1
            return
        if tag == "pre" and self._in_pre:
            caption, download = self._caption_done
            self.blocks.append(
                CodeBlock(
                    where=f"{self.page.name}, block {len(self.blocks) + 1}",
                    language=self._language or "",
                    text="".join(self._text),
                    caption=caption,
                    download=download,
                )
            )
            self._in_pre, self._language, self._caption_done = False, None, ("", None)

    def handle_data(self, data: str) -> None:
        if self._caption is not None and self._caption_depth >= 0:
            self._caption.append(data)
        elif self._in_pre:
            self._text.append(data)


def html_code_blocks(page: Path) -> list[CodeBlock]:
    """The code blocks of one built page, in order."""
    parser = _CodeBlockParser(page)
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.blocks


def built_pages(html: Path) -> list[Path]:
    """The pages a reader reads: not the highlighted sources viewcode adds."""
    return sorted(
        page
        for page in html.rglob("*.html")
        if not page.relative_to(html).parts[0].startswith("_")
        and page.name not in ("genindex.html", "search.html", "py-modindex.html")
    )


def readme_code_blocks() -> list[CodeBlock]:
    """The README's code blocks, as docutils (and so the package index) reads them."""
    from docutils import nodes
    from docutils.core import publish_doctree

    tree = publish_doctree(
        README.read_text(encoding="utf-8"),
        source_path=str(README),
        settings_overrides={"report_level": 5, "syntax_highlight": "none"},
    )
    blocks = []
    for number, node in enumerate(tree.findall(nodes.literal_block), start=1):
        classes = [c for c in node.get("classes", []) if c != "code"]
        blocks.append(
            CodeBlock(
                where=f"README.rst, block {number}",
                language=classes[0] if classes else "",
                text=node.astext() + "\n",
            )
        )
    return blocks


def undefined_names(source: str, filename: str) -> set[str]:
    """Names the code uses that it neither defines nor imports, nor are builtins.

    What a reader who copies the block into a file would meet as NameError.
    """
    top = symtable.symtable(source, filename, "exec")
    defined = {
        symbol.get_name()
        for symbol in top.get_symbols()
        if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace()
    }
    used = {
        symbol.get_name()
        for symbol in top.get_symbols()
        if symbol.is_referenced() and symbol.get_name() not in defined
    }
    tables = list(top.get_children())
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_referenced() and symbol.is_global() and not symbol.is_declared_global():
                used.add(symbol.get_name())
    return used - defined - set(dir(builtins)) - {"__file__", "__name__"}


def in_order(excerpt: str, whole: str) -> bool:
    """Whether every line of ``excerpt`` is in ``whole``, in the same order."""
    lines = iter(line.strip() for line in whole.splitlines())
    return all(
        any(line == wanted for line in lines)
        for wanted in (w.strip() for w in textwrap.dedent(excerpt).splitlines())
        if wanted
    )
