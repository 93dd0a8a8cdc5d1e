"""Check a built site as a reader meets it: maths rendered, images there, nothing external.

Run by the build hook after every build (``hooks.py``) and usable alone::

    python docs/check_site.py site

For each HTML page:

- no TeX left unrendered in the visible text (``\\(``, ``\\[``, ``$$``, ``$…\\cmd…$``, or
  the docstrings' plain ``x^{…}``/``x_{…}``, outside code), no arithmatex wrapper left, no
  MathML error element (``<merror>``);
- every ``<img>`` is a file of the site or a ``data:`` URI whose bytes decode to a PNG, JPEG,
  GIF or SVG image;
- no script, style sheet, image or frame is loaded from outside the site (the site works
  offline and tells no third party who reads it);
- every link inside the site leads to a file of the site, and its ``#anchor`` to an element
  of that page (MkDocs checks links written in Markdown; this also covers notebooks and the
  API pages).
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_SKIP_TEXT = {"pre", "code", "script", "style", "math", "textarea", "kbd", "samp"}
# the notebooks' hidden copy of each cell's source (for the copy button) is code, not text
_SKIP_CLASSES = {"clipboard-copy-txt"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}
_TEX = re.compile(
    r"\\\(|\\\[|\$\$.*?\$\$|\$\$|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$"  # TeX delimiters
    r"|\S[\^_]\{[^{}\n]*\}",  # the docstrings' plain-text x^{…} / x_{…}, left as typed
    re.S,
)
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"<svg", b"<?xml")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, text inside it is not prose)
        self.text: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.merror = 0
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.arithmatex = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag not in _VOID:
            classes = set((a.get("class") or "").split())
            self.stack.append((tag, tag in _SKIP_TEXT or bool(classes & _SKIP_CLASSES)))
        if tag == "merror":
            self.merror += 1
        if "arithmatex" in (a.get("class") or "").split():
            self.arithmatex += 1
        if tag == "img":
            self.images.append(a.get("src") or "")
        url = {"script": a.get("src"), "iframe": a.get("src"),
               "link": a.get("href") if "stylesheet" in (a.get("rel") or "") else None,
               }.get(tag)
        if url and url.startswith(("http:", "https:", "//")):
            self.external.append(f"<{tag}> {url}")

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        # tolerate sloppy nesting: pop back to the matching tag if it is open
        if any(t == tag for t, _ in self.stack):
            while self.stack and self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        if not any(skip for _, skip in self.stack):
            self.text.append(data)


def _image_problem(src: str, page: Path, site: Path) -> str | None:
    if not src:
        return "an <img> without src"
    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        try:
            raw = base64.b64decode(payload, validate=True) if ";base64" in head else unquote(
                payload).encode()
        except (binascii.Error, ValueError):
            return f"image data URI does not decode ({head[:40]})"
        if not raw.lstrip().startswith(_SIGNATURES):
            return f"image data URI is not a PNG/JPEG/GIF/SVG ({head[:40]})"
        return None
    parts = urlsplit(src)
    if parts.scheme or src.startswith("//"):
        return f"image from outside the site: {src}"
    target = _target(parts.path, page, site)
    if not target.is_file():
        return f"missing image {src}"
    if target.stat().st_size == 0:
        return f"empty image {src}"
    return None


def _target(path: str, page: Path, site: Path) -> Path:
    """The file a link's path names: from the site's root if absolute, else from the page."""
    base = site if path.startswith("/") else page.parent
    return (base / unquote(path.lstrip("/"))).resolve()


def _parse(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _link_problem(href: str, page: Path, site: Path, ids) -> str | None:
    parts = urlsplit(href)
    if parts.scheme or href.startswith("//"):
        return None  # outside the site: not checked (no network here)
    if not parts.path:
        target = page.resolve()
    else:
        target = _target(parts.path, page, site)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return f"broken link {href}"
    if parts.fragment and target.suffix == ".html":
        if unquote(parts.fragment) not in ids(target):
            return f"link to a missing anchor {href}"
    return None


def _check_page(path: Path, site: Path, parser: _Page, ids) -> list[str]:
    """The problems of one built page (an empty list if none); ``ids(file)`` gives the
    anchors of a page of the site."""
    rel = path.relative_to(site).as_posix()
    out = [f"{rel}: unrendered TeX: {m.group(0)[:60]!r}"
           for m in _TEX.finditer("".join(parser.text))]
    if parser.arithmatex:
        out.append(f"{rel}: {parser.arithmatex} formula(s) left in arithmatex wrappers")
    if parser.merror:
        out.append(f"{rel}: {parser.merror} MathML error element(s)")
    out += [f"{rel}: {p}" for src in parser.images
            if (p := _image_problem(src, path, site)) is not None]
    out += [f"{rel}: loads {e}" for e in parser.external]
    out += [f"{rel}: {p}" for href in dict.fromkeys(parser.links)
            if (p := _link_problem(href, path, site, ids)) is not None]
    return out


def check_site(site: Path) -> list[str]:
    """The problems of every page of a built site."""
    site = Path(site)
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no HTML pages (was the site built?)"]
    parsed = {page.resolve(): _parse(page) for page in pages}

    def ids(p: Path) -> set[str]:
        return parsed[p].ids if p in parsed else set()

    return [p for page in pages for p in _check_page(page, site, parsed[page.resolve()], ids)]


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "site")
    problems = check_site(site)
    for p in problems:
        print(p)
    print(f"{len(list(site.rglob('*.html')))} pages checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
