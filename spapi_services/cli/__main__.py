"""``python -m spapi_services.cli``: the same as the ``spapi-services`` command."""

from . import main

main()
