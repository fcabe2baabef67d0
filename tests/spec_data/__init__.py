"""What the tests know of Amazon's Services API model: a structure-only extract, owned here.

``services_model.json`` is written by ``extract.py`` (run it after the official model
changes; a test says when the two disagree).  It has the layout of the model's ``paths``
and ``definitions``, so a static-mode emulator can replay its sandbox cases as it would
the model's, and it has none of the model's prose.
"""

from __future__ import annotations

import json
from typing import Any

from .extract import MODEL_PATH

__all__ = ["MODEL_PATH", "load_model"]


def load_model() -> dict[str, Any]:
    """The committed extract, parsed afresh (callers may change their copy)."""
    model: dict[str, Any] = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    return model
