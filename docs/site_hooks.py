"""MkDocs hook: the docs link to recipes and other files of the repository outside docs/.

Each such link must name a file that exists (else the build fails, as a broken link inside
docs/ does); the file is published under ``repo/`` in the site and the link rewritten to it,
so a reader of the site opens the recipe itself.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

LINK = re.compile(r"\]\((?!\w+:|#)([^)\s#]+)(#[^)\s]*)?\)")
PUBLISHED = "repo"


def _outside_targets(page_src: Path, docs: Path, root: Path, text: str):
    """(link, repository-relative path) of each relative link in ``text`` that leaves docs/."""
    for match in LINK.finditer(text):
        target = (page_src.parent / match.group(1)).resolve()
        if target.is_relative_to(docs):
            continue
        if not target.is_relative_to(root) or not target.is_file():
            raise PluginError(
                f"{page_src.relative_to(docs)} links to {match.group(1)!r}, which is not a "
                "file of the repository"
            )
        yield match.group(1), target.relative_to(root).as_posix()


def on_files(files, config):
    """Publish every repository file that a page links to under ``repo/``."""
    docs = Path(config["docs_dir"]).resolve()
    root = docs.parent
    wanted = {}
    for page in files.documentation_pages():
        src = Path(page.abs_src_path)
        for _, rel in _outside_targets(src, docs, root, src.read_text(encoding="utf-8")):
            wanted[rel] = root / rel
    for rel, path in sorted(wanted.items()):
        files.append(File.generated(config, f"{PUBLISHED}/{rel}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite the links that leave docs/ to the published copies."""
    docs = Path(config["docs_dir"]).resolve()
    src = Path(page.file.abs_src_path)
    here = posixpath.dirname(page.file.src_uri)
    for link, rel in set(_outside_targets(src, docs, docs.parent, markdown)):
        new = posixpath.relpath(f"{PUBLISHED}/{rel}", here or ".")
        markdown = markdown.replace(f"]({link})", f"]({new})").replace(f"]({link}#", f"]({new}#")
    return markdown
