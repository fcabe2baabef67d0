"""Async client for Amazon's Selling Partner API, Services API v1."""

__version__ = "0.1.0"
