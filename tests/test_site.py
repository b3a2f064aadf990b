"""The documentation site: it builds strictly, and its pages render in a real browser.

The build is `mkdocs build --strict` (what `make docs` runs): a broken link, a missing anchor,
a link to a repository file that does not exist or an API reference that names no object
fails it. The rendering check opens the built index and an API page in headless Chromium
(Playwright driving the system's Chromium; `.ci/run` installs it) and checks the title, that
the screenshot is not blank and that the page logged no console error.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _mkdocs(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = _mkdocs("build", "--strict", "--site-dir", str(out))
    assert built.returncode == 0, built.stderr[-4000:]
    return out


def test_the_site_builds_strictly_with_the_api_reference(site):
    page = (site / "api" / "problems" / "index.html").read_text(encoding="utf-8")
    # mkdocstrings rendered the objects, with their docstrings
    for name in (
        "problem.StrongForm",
        "problem.Dirichlet",
        "unknowns.Unknown",
        "observations.Observations",
    ):
        assert f'id="pinnlab.{name}"' in page
    assert "outward unit normal" in page  # a docstring's text, not only the signatures
    # a recipe linked from the docs is published and the link points at it
    assert (site / "repo" / "configs" / "runs" / "poisson-sine-pinn.yaml").is_file()
    catalogue = (site / "catalogue" / "index.html").read_text(encoding="utf-8")
    assert 'href="../repo/configs/runs/poisson-sine-pinn.yaml"' in catalogue


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "pinnlab", tmp_path / "pinnlab")
    (tmp_path / "configs").mkdir()  # the recipes are gone: every link to one is now broken
    built = _mkdocs("build", "--strict", "--site-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert built.returncode != 0
    assert "not a file of the repository" in built.stderr


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run installs it)")
@pytest.mark.parametrize(
    ("path", "title"),
    [("", "pinnlab"), ("api/derivatives/", "Derivatives - pinnlab")],
)
def test_pages_render_in_headless_chromium(site, path, title):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    server = _serve(site)
    errors = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = page.goto(f"http://127.0.0.1:{server.server_port}/{path}")
            page.wait_for_load_state("networkidle")
            assert response is not None and response.ok
            assert page.title() == title
            shot = page.screenshot(full_page=False)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert errors == []
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    assert pixels.shape == (900, 1200)
    assert int(pixels.max()) - int(pixels.min()) > 100, "the screenshot is blank"
    # text covers a good part of the page below the header: not an empty page
    assert (pixels[100:] < 128).mean() > 0.01
