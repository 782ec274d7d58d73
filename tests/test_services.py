"""Opening one library from two processes' worth of Services."""

from __future__ import annotations

from hikaze_mm.config import Config
from hikaze_mm.services import Services

SHA = "e" * 64


def test_only_the_first_opener_cleans_partial_writes(config: Config) -> None:
    first = Services.open(config)
    try:
        assert first.lock.held
        claim = first.images.claim_seq(SHA)  # an in-flight write of the first process
        second = Services.open(config)
        try:
            assert not second.lock.held
            assert first.images.tier_path(SHA, claim, "high").exists()
        finally:
            second.close()
    finally:
        first.close()
    # Once the owner has gone, the next opener recovers: the stale claim is removed.
    third = Services.open(config)
    try:
        assert third.lock.held
        assert not third.images.tier_path(SHA, claim, "high").exists()
    finally:
        third.close()
