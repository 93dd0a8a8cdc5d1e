"""MkDocs hooks: the maths rendered at build time, and the built site checked.

Maths is written as ``$…$`` / ``$$…$$`` in pages, notebooks and docstrings. It is turned into
MathML while the site is built (``latex2mathml``), so a reader's browser renders it natively,
with no script and no request to a CDN; a formula that cannot be converted fails the build,
naming the page and the formula.

After the build, every page is checked as a reader would meet it (``check_site.py``): no
TeX left unrendered, every image present and decodable, nothing fetched from outside the
site. A failure fails ``mkdocs build`` (strict or not).
"""

from __future__ import annotations

import atexit
import html
import os
import posixpath
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from check_site import check_site  # noqa: E402

# pymdownx.arithmatex (generic mode) wraps maths as \( … \) and \[ … \] inside these elements
_ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*'
    r"(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])"
    r"\s*</(?P=tag)>",
    re.S,
)
# notebooks (mkdocs-jupyter): raw $…$ and $$…$$ in the rendered markdown cells only
_NB_MARKDOWN = re.compile(
    r'(<div class="[^"]*jp-RenderedMarkdown[^"]*"[^>]*>)(.*?)(</div>)', re.S
)
_NB_MATH = re.compile(r"\$\$(?P<block>.+?)\$\$|(?<![\\$])\$(?P<inline>[^$\n]+?)\$", re.S)


def _mathml(latex: str, display: bool, where: str) -> str:
    from latex2mathml.converter import convert
    from mkdocs.exceptions import PluginError

    latex = html.unescape(latex).strip()
    try:
        return convert(latex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises plain exceptions for bad TeX
        raise PluginError(f"{where}: cannot render the formula {latex!r}: {exc}") from exc


def _formula(m: re.Match, where: str) -> str:
    """MathML for a match with a ``block`` or an ``inline`` group."""
    block = m.group("block") is not None
    return _mathml(m.group("block") if block else m.group("inline"), block, where)


def render_maths(text: str, where: str) -> str:
    """Replace arithmatex's TeX spans in ``text`` by MathML."""
    return _ARITHMATEX.sub(lambda m: _formula(m, where), text)


def render_notebook_maths(text: str, where: str) -> str:
    """Replace ``$…$`` / ``$$…$$`` in a notebook's markdown cells by MathML."""
    return _NB_MARKDOWN.sub(
        lambda c: c.group(1) + _NB_MATH.sub(lambda m: _formula(m, where), c.group(2))
        + c.group(3), text)


# Plain-text maths of the docstrings (readable in help()): x^{…}, x_{…}, ℝ^p, x^2. On the
# site, outside code, these become <sup>/<sub>.
_TAG = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"</?([A-Za-z][\w-]*)")
_SKIP = ("code", "pre", "script", "style", "math", "kbd", "samp", "textarea")
_SCRIPT = re.compile(
    r"(?<=[^\s^_])(?P<op>[_^])(?:\{(?P<braced>[^{}<>]*)\}|(?P<bare>[−-]?[0-9]+\b|[A-Za-zα-ωΑ-Ω](?![\w(])))"
)


def render_plain_scripts(text: str) -> str:
    """Turn the docstrings' ``^{…}``, ``_{…}``, ``^p``, ``^2`` into superscripts and subscripts.

    Only in text outside code, preformatted blocks and MathML; identifiers such as
    ``init_gaussian`` are code and stay as they are.
    """
    out, skip = [], 0
    for piece in _TAG.split(text):
        if piece.startswith("<"):
            name = _TAG_NAME.match(piece)
            if name and name.group(1).lower() in _SKIP and not piece.endswith("/>"):
                skip = max(skip + (-1 if piece.startswith("</") else 1), 0)
            out.append(piece)
        elif skip:
            out.append(piece)
        else:
            out.append(_SCRIPT.sub(
                lambda m: ("<sup>{}</sup>" if m["op"] == "^" else "<sub>{}</sub>").format(
                    m["braced"] if m["braced"] is not None else m["bare"]), piece))
    return "".join(out)


def on_config(config):
    """Run the notebooks' kernels in a private, empty IPython profile.

    A reader's own startup files (``~/.ipython/profile_default/startup``) then cannot change
    what the notebooks print, and the kernel's start-up chatter (a warning that a local
    kernel talks to this process over TCP on 127.0.0.1) stays out of the build log: only
    errors are logged.
    """
    ipython_dir = Path(tempfile.mkdtemp(prefix="flowtools-docs-ipython-"))
    atexit.register(shutil.rmtree, ipython_dir, ignore_errors=True)
    profile = ipython_dir / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text('c.IPKernelApp.log_level = "ERROR"\n')
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    return config


# relative links to pages in a notebook's HTML: MkDocs rewrites them only in Markdown pages
_NB_HREF = re.compile(
    r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|#|/)([^"#?]+\.(?:md|ipynb))(#[^"]*)?"')


def notebook_links(html_text: str, page, files) -> str:
    """Point a notebook's ``../guide/flow.md#x`` links at the built pages, as MkDocs does
    for Markdown pages; a link to a page that does not exist fails the build."""
    from mkdocs.exceptions import PluginError

    base = posixpath.dirname(page.file.src_uri)

    def repl(m: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(base, html.unescape(m.group(1))))
        f = files.get_file_from_path(target)
        if f is None:
            raise PluginError(f"{page.file.src_uri}: link to a missing page {m.group(1)!r}")
        return f'href="{f.url_relative_to(page.file)}{m.group(2) or ""}"'

    return _NB_HREF.sub(repl, html_text)


def on_page_content(html_text: str, page, config, files) -> str:
    where = page.file.src_uri
    out = render_maths(html_text, where)
    if where.endswith(".ipynb"):
        out = notebook_links(render_notebook_maths(out, where), page, files)
    return render_plain_scripts(out)


def on_post_build(config) -> None:
    from mkdocs.exceptions import PluginError

    problems = check_site(Path(config["site_dir"]))
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  … and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise PluginError(f"the built site has {len(problems)} problem(s):\n  {shown}{more}")
