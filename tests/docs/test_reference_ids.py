"""The names of the id-or-record types in the reference's signatures (``JobRef``...), which
the SDK keeps in a private module, so no page of their own: the reference index explains
each, and every page whose signatures show one links there."""

from __future__ import annotations

import re
from pathlib import Path

_PRIVATE_ALIAS = re.compile(r'<span title="spapi_services\._ids\.(\w+)">')
_SECTION = "index.html#ids-or-the-records-that-carry-them"


def _shown(built_site: Path) -> dict[str, set[str]]:
    """Page name -> the private id types its signatures show."""
    return {
        page.name: found
        for page in sorted((built_site / "reference").glob("*.html"))
        if (found := set(_PRIVATE_ALIAS.findall(page.read_text(encoding="utf-8"))))
    }


def test_the_resource_pages_show_id_types(built_site: Path) -> None:
    shown = _shown(built_site)
    assert {"appointments.html", "service-jobs.html", "scheduling.html"} <= set(shown)
    assert set().union(*shown.values()) >= {"JobRef", "AppointmentRef", "ResourceRef"}


def test_each_id_type_shown_is_explained_and_linked(built_site: Path) -> None:
    index = (built_site / "reference" / "index.html").read_text(encoding="utf-8")
    for page, names in _shown(built_site).items():
        text = (built_site / "reference" / page).read_text(encoding="utf-8")
        assert f'href="{_SECTION}"' in text, f"{page} shows {names} without linking to them"
        for name in names:
            assert f'<h3 id="{name.lower()}">{name}' in index, f"{name} is not explained"
