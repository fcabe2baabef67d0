"""Fixtures for the site's page tests: an emulator with its clock pinned, and a client."""

from _pages import client, emulator

__all__ = ["client", "emulator"]
