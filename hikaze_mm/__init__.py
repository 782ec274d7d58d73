"""Hikaze Model Manager: model files identified by the SHA-256 of their content."""

__version__ = "3.0.0"
