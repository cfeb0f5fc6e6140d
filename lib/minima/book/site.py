"""Build the Jupyter Book site from the executed notebooks, fully offline.

The site must render without network access: plotly.min.js comes from the
installed plotly package and MathJax 3 from the npm package ``mathjax@3``
(``make mathjax`` fetches it into ``.cache/``). plotly.min.js goes to ``book/_static/``
(Jupyter Book adds every ``.js`` there to every page); MathJax goes to ``book/_extra/``
(copied to the site root by ``html_extra_path``, loaded only on pages with math).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .ledger import placeholder_summary
from .jobs import ROOT, Project

# an asset of this installation (``make mathjax``), like plotly.min.js, not of the project folder
MATHJAX_SOURCE = ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax" / "es5"


class BookError(RuntimeError):
    """The site cannot be built; the message says what to do."""


def prepare_static(project: Project) -> None:
    """Copy plotly.min.js into ``book/_static`` and MathJax into ``book/_extra`` (idempotent)."""
    import plotly

    static = project.book / "_static"
    static.mkdir(parents=True, exist_ok=True)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not (static / "plotly.min.js").exists() or \
            (static / "plotly.min.js").stat().st_size != plotly_js.stat().st_size:
        shutil.copyfile(plotly_js, static / "plotly.min.js")
    extra = project.book / "_extra"
    if not (extra / "mathjax" / "tex-chtml.js").exists():
        if not (MATHJAX_SOURCE / "tex-chtml.js").exists():
            raise BookError(f"MathJax 3 not found at {MATHJAX_SOURCE}; run 'make mathjax' "
                            "(npm install mathjax@3 into .cache/mathjax)")
        shutil.copytree(MATHJAX_SOURCE, extra / "mathjax", dirs_exist_ok=True)


def build(project: Project | None = None) -> Path:
    """Run jupyter-book on ``book/`` with the root ``_config.yml``; returns the index page."""
    project = project or Project()
    root = project.root
    prepare_static(project)
    if not any(project.generated.glob("*.ipynb")):
        raise BookError("no executed notebooks in book/generated; run 'python -m minima run' first")
    placeholder_summary(project.generated / "claims_summary.md")  # the landing page includes it
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(project.book),
               "--config", str(root / "_config.yml"), "--path-output", str(root)]
    if subprocess.run(command, cwd=root).returncode != 0:
        raise BookError("jupyter-book build failed (see its output above)")
    index = project.site / "index.html"
    if not index.exists():
        raise BookError(f"jupyter-book finished but {index} is missing")
    return index
