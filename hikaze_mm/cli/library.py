from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Subcommands of this module are added here."""
