"""Open the built site in headless Chromium as a reader would, check it, take screenshots.

    python docs/browser_check.py [SITE] [--out DIR] [--chromium PATH]

The site is served on 127.0.0.1 (a free port) and each page below is loaded in Chromium
(Debian's ``chromium`` package). After the page's scripts have run, ``selfcheck.js`` records
on the page which images failed to load and whether every formula laid out as MathML; this
script reads that from the DOM and fails (exit 1) if an image is missing, a formula is not
rendered, or a page has no formulas where it must have some. Screenshots of the same pages go
to ``--out`` (default ``site-screenshots/``): home, a guide page, an API page, a notebook.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# (page, name of the screenshot, must it show maths?)
PAGES = [
    ("index.html", "home", True),
    ("guide/flow/index.html", "guide_flow", True),
    ("api/index.html", "api_flowtools", False),
    ("examples/01_flow_vs_gd/index.html", "notebook_flow_vs_gd", True),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,1600"]
_SELFCHECK = re.compile(r'<html[^>]*\sdata-selfcheck="([^"]*)"')


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


def _chromium(exe: str, url: str, *extra: str, timeout: float = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                             capture_output=True, text=True, timeout=timeout)
    return run.stdout


def check(site: Path, out: Path, exe: str) -> list[str]:
    """Load each page, read its self-check, save a screenshot; return the problems."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        for page, name, needs_maths in PAGES:
            if not (site / page).is_file():
                problems.append(f"{page}: not in the built site")
                continue
            dom = _chromium(exe, base + page, "--virtual-time-budget=15000", "--dump-dom")
            m = _SELFCHECK.search(dom)
            if m is None:
                problems.append(f"{page}: the self-check did not run (no data-selfcheck)")
                continue
            rep = json.loads(html.unescape(m.group(1)))
            print(f"{page}: {rep['images']} images ({len(rep['images_failed'])} failed), "
                  f"{rep['maths']} formulas ({rep['maths_unrendered']} unrendered), "
                  f"MathML {'yes' if rep['mathml_supported'] else 'NO'}")
            if rep["images_failed"]:
                problems.append(f"{page}: images failed to load: {rep['images_failed']}")
            if rep["maths_unrendered"] or not rep["mathml_supported"]:
                problems.append(f"{page}: {rep['maths_unrendered']} formulas not rendered")
            if needs_maths and rep["maths"] == 0:
                problems.append(f"{page}: no formula found (expected some)")
            _chromium(exe, base + page, "--virtual-time-budget=15000",
                      f"--screenshot={out / (name + '.png')}")
            if not (out / f"{name}.png").is_file():
                problems.append(f"{page}: no screenshot written")
    finally:
        server.shutdown()
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site", nargs="?", default="site", type=Path)
    ap.add_argument("--out", default=Path("site-screenshots"), type=Path)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args(argv)
    if not Path(a.chromium).exists():
        print(f"browser_check: no Chromium at {a.chromium}: install Debian's package "
              "(apt-get install chromium) or pass --chromium PATH", file=sys.stderr)
        return 2
    problems = check(a.site, a.out, a.chromium)
    for p in problems:
        print("PROBLEM:", p)
    print(f"{len(PAGES)} pages opened in Chromium, {len(problems)} problem(s); "
          f"screenshots in {a.out}/")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
