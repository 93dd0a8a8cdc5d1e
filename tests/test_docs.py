"""The documentation: README and site agree with one source, and the site checker can fail.

The site itself is built (notebooks executed, strict) by ``.ci/run``; these tests keep the
sources consistent and test ``docs/check_site.py``, the check the build runs on every page.
"""

from __future__ import annotations

import base64
import html as html_module
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_site = _load("check_site")
hooks = _load("hooks")


def _section(text: str, name: str) -> str:
    m = re.search(rf"--8<-- \[start:{name}\] -->\n(.*?)<!-- --8<-- \[end:{name}\]", text, re.S)
    assert m, f"README.md has no section {name!r}"
    return m.group(1)


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def test_readme_is_short_and_keeps_the_two_commands():
    assert len(README.splitlines()) <= 120
    blocks = _bash_blocks(_section(README, "commands"))
    assert [b.strip() for b in blocks] == [
        "pip install -e . && flowtools verify --out out/theory",
        'pip install -e ".[test]" && python -m pytest',
    ]


def test_ci_runs_exactly_the_readme_test_and_docs_commands():
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    test_cmd = _bash_blocks(_section(README, "commands"))[1]
    docs_cmd = _bash_blocks(_section(README, "docs-command"))[0].split("#")[0]
    for cmd in (test_cmd, docs_cmd):
        for part in cmd.strip().split(" && "):
            assert part.strip() in ci, f".ci/run does not run {part.strip()!r}"
    # the tests run last, so pytest's summary closes the log
    assert ci[-1] == "python -m pytest"


def _nav_pages() -> list[str]:
    return re.findall(r":\s+(\S+\.(?:md|ipynb))\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_pages()
    assert len(nav) == len(set(nav)) and nav
    for page in nav:
        assert (DOCS / page).is_file(), f"mkdocs.yml names a missing page {page}"
    sources = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*")
               if p.suffix in (".md", ".ipynb") and ".ipynb_checkpoints" not in p.parts}
    assert sources - {"README.md"} == set(nav)


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((DOCS / "examples").glob("*.ipynb"))
    assert len(notebooks) >= 4
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        assert nb["cells"][0]["cell_type"] == "markdown"
        assert "".join(nb["cells"][0]["source"]).startswith("# "), "a title first"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                    f"{nb_path.name}: outputs are made by the docs build, never committed")


def test_snippets_name_sections_that_exist():
    for page in DOCS.rglob("*.md"):
        for name in re.findall(r'--8<-- "README\.md:([\w-]+)"', page.read_text()):
            _section(README, name)


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#\s]+)\)", README):
        if not target.startswith(("http:", "https:")):
            assert (ROOT / target).exists(), f"README links to a missing {target}"


# --- the site checker ---------------------------------------------------------------------

PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                  "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")
).decode()
GOOD = f"""<html><head><script src="../assets/app.js"></script></head><body><article>
<p>The flow <math display="inline"><mi>θ</mi></math> costs $5 and $6 (not maths).</p>
<pre><code>echo $$ \\(x\\)</code></pre><div class="clipboard-copy-txt">f"$${{x}}$$"</div>
<img src="data:image/png;base64,{PNG}"><img src="fig.png">
<a id="top" href="#top">top</a> <a href="./#top">here</a> <a href="https://x.org/">out</a>
</article></body></html>"""


def _site(tmp_path: Path, body: str) -> Path:
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text(body, encoding="utf-8")
    (tmp_path / "page" / "fig.png").write_bytes(base64.b64decode(PNG))
    return tmp_path


def test_check_site_accepts_a_good_page(tmp_path):
    assert check_site.check_site(_site(tmp_path, GOOD)) == []


@pytest.mark.parametrize("bad, says", [
    (r"<p>inline \(x^2\) left</p>", "unrendered TeX"),
    (r"<p>$$x^2$$</p>", "unrendered TeX"),
    (r"<p>the rate $\alpha$ here</p>", "unrendered TeX"),
    (r"<p>the limit lim_{α→0} here</p>", "unrendered TeX"),
    ('<span class="arithmatex">x</span>', "arithmatex"),
    ("<math><merror><mtext>x</mtext></merror></math>", "MathML error"),
    ('<img src="missing.png">', "missing image"),
    ('<img src="data:image/png;base64,AAAA">', "not a PNG"),
    ('<img src="data:image/png;base64,@@">', "does not decode"),
    ('<img src="https://example.org/x.png">', "outside the site"),
    ('<script src="https://cdn.example.org/mathjax.js"></script>', "loads <script>"),
    ('<link rel="stylesheet" href="//fonts.example.org/f.css">', "loads <link>"),
    ('<a href="../guide/flow.md">a source path</a>', "broken link"),
    ('<a href="#nowhere">a missing anchor</a>', "missing anchor"),
])
def test_check_site_names_each_problem(tmp_path, bad, says):
    page = GOOD.replace("</article>", bad + "</article>")
    problems = check_site.check_site(_site(tmp_path, page))
    assert len(problems) == 1 and says in problems[0], problems


def test_check_site_refuses_an_empty_site(tmp_path):
    assert "no HTML pages" in check_site.check_site(tmp_path)[0]


# --- the build hooks: maths rendered at build time -----------------------------------------

def test_tex_becomes_mathml():
    page = ('<p>flow <span class="arithmatex">\\(\\dot\\theta = -\\nabla\\ell\\)</span></p>'
            '<div class="arithmatex">\\[\\frac{1}{\\mu_1}\\]</div>')
    out = hooks.render_maths(page, "page.md")
    assert out.count("<math") == 2 and 'display="block"' in out and "arithmatex" not in out
    assert "<mfrac>" in out and "θ" in html_module.unescape(out)


def test_notebook_dollars_become_mathml_only_in_markdown_cells():
    page = ('<div class="jp-RenderedMarkdown">rate $\\mu_1$ and $$x^2$$</div>'
            '<div class="jp-OutputArea"><pre>cost $5 and $6</pre></div>')
    out = hooks.render_notebook_maths(page, "nb.ipynb")
    assert out.count("<math") == 2 and "cost $5 and $6" in out


@pytest.mark.parametrize("text, html", [
    ("lim_{α→0} φ", "lim<sub>α→0</sub> φ"),
    ("F: ℝ^p → ℝ^p.", "F: ℝ<sup>p</sup> → ℝ<sup>p</sup>."),
    ("α^{(μ1−μ2)/(2μ1−μ2)}", "α<sup>(μ1−μ2)/(2μ1−μ2)</sup>"),
    ("t^{−k} and x^2", "t<sup>−k</sup> and x<sup>2</sup>"),
    ("<code>x^{2} init_gaussian</code> n_test", "<code>x^{2} init_gaussian</code> n_test"),
    ("<pre>a_{k}</pre>", "<pre>a_{k}</pre>"),
])
def test_docstring_scripts_become_sup_and_sub_outside_code(text, html):
    assert hooks.render_plain_scripts(text) == html
