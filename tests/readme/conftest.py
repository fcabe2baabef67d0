"""Fixtures for the README tests: an emulator with its clock pinned, and a client for it."""

from _pages import client, emulator

__all__ = ["client", "emulator"]
