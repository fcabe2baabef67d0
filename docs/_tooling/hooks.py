"""MkDocs hooks: files the site shows from outside docs/.

The benchmark page includes benchmarks/RESULTS.md, which shows its chart as
``bound.png`` beside it: the chart is served from benchmarks/bound.png as it stands, at
the same place beside the page, so the lead's next run refreshes both without a copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]

#: Site path -> the repository file served there.
BORROWED = {"benchmarks/bound.png": ROOT / "benchmarks" / "bound.png"}


def on_files(files: Files, config: Any) -> Files:
    for src_uri, source in BORROWED.items():
        files.append(File.generated(config, src_uri, abs_src_path=str(source)))
    return files


def on_post_build(config: Any) -> None:
    # Like a virtual environment or pytest's cache, the built site ignores itself, so
    # a build in a checkout never shows up as changes to commit.
    (Path(config["site_dir"]) / ".gitignore").write_text("*\n", encoding="utf-8")
