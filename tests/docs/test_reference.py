"""Every public name has a docstring, and a place in the site's API reference.

The public names are those in ``__all__`` of the package, of each public subpackage or
module of it (models, errors, sync, emulator, redis, resources, and the fleet once it is
there) and of the pytest plugin.  The reference's coverage is read from the built site's
objects.inv, which lists every object mkdocstrings rendered.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import griffe
import pytest

from ._site import inventory, load_package, public_names


@pytest.fixture(scope="module")
def names() -> dict[str, griffe.Object]:
    return public_names(load_package())


def _own_docstring(obj: griffe.Object) -> str:
    return obj.docstring.value.strip() if obj.docstring is not None else ""


def test_there_are_public_names_to_check(names: dict[str, griffe.Object]) -> None:
    assert "spapi_services.ServicesClient" in names
    assert "spapi_services.models.ServiceJob" in names
    assert "spapi_services.emulator.pytest_plugin.DEFAULT_MARKETPLACE" in names
    assert len(names) > 150


def test_every_public_name_has_a_docstring(names: dict[str, griffe.Object]) -> None:
    undocumented = sorted(path for path, obj in names.items() if not _own_docstring(obj))
    assert undocumented == [], f"public names without a docstring: {undocumented}"


def test_every_public_method_and_property_has_a_docstring(
    names: dict[str, griffe.Object],
) -> None:
    undocumented = []
    for path, obj in names.items():
        if not obj.is_class:
            continue
        for member_name, member in obj.members.items():
            if member_name.startswith("_") or member.is_alias or not member.is_function:
                continue
            if "attrs" in member.labels:  # the signature written for an attrs class
                continue
            name = f"{path}.{member_name}"
            if not _own_docstring(member):
                undocumented.append(name)
    assert undocumented == [], f"public methods without a docstring: {undocumented}"


def test_every_public_name_is_in_the_reference(
    names: dict[str, griffe.Object], built_site: Path
) -> None:
    rendered = inventory(built_site)
    missing = sorted(
        path for path, obj in names.items() if path not in rendered and obj.path not in rendered
    )
    assert missing == [], (
        f"public names the reference does not show: {missing}. A page that renders the "
        "module's names (<!-- reference: MODULE -->, docs/_tooling/hooks.py) shows a new "
        "one by itself; otherwise add `::: MODULE.NAME` to the page of its area in "
        "docs/reference/, or, for a new public module, a page (and its line in mkdocs.yml)"
    )


def test_a_default_named_by_a_constant_shows_its_value(built_site: Path) -> None:
    page = (built_site / "reference" / "client.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page)))
    text = text.replace(" )", ")")
    assert "DEFAULT_TIMEOUT" not in text
    assert "timeout: float = 30.0, deadline: float | None = 60.0," in text  # the signature
    assert "timeout (float, default: 30.0)" in text  # the parameter's entry
    assert "deadline (float | None, default: 60.0)" in text
