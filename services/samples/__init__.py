"""Bundled sample event streams."""
