"""A promotion killed (SIGKILL) at each step converges when the library is reopened.

A forked child runs one promotion and kills itself at a chosen point: inside the DB
transaction (images written, nothing committed) or right after the commit (the pending
originals and override's rename onto seq 0 not done yet). The parent reopens the library,
retries, and compares everything with a run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.pending.journal import JOURNAL_KEY, PromotionJournal
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.promotion_helpers import add_pending, library_snapshot

config = on_each_backend()


def _setup(services: Services, root: Path) -> dict[str, int]:
    """An existing model with two images, and a pending twin with one image."""
    first, _ = add_pending(
        services,
        root,
        "old.safetensors",
        b"twin content",
        tags=("old",),
        images=((10, 10, 10), (20, 20, 20)),
        created_at=1,
        meta={"a": 1},
    )
    services.promoter.promote(first)
    second, _ = add_pending(
        services,
        root,
        "new.safetensors",
        b"twin content",
        tags=("new",),
        images=((200, 100, 0),),
        created_at=2,
        base="SDXL",
        meta={"b": 2},
    )
    fresh, _ = add_pending(
        services, root, "fresh.safetensors", 5000, images=((5, 6, 7), (8, 9, 10)), created_at=3
    )
    return {"new.safetensors": second, "fresh.safetensors": fresh}


def _open(tmp: Path) -> tuple[Config, Services]:
    root = tmp / "models"
    root.mkdir(parents=True, exist_ok=True)
    config = Config.load(data_dir=tmp / "data", model_roots=[str(root)], env={})
    return config, Services.open(config)


def _snapshot(services: Services) -> dict[str, Any]:
    snap = library_snapshot(services)
    snap["tier_digests"] = {
        name: hashlib.sha256((services.images.images_dir / name).read_bytes()).hexdigest()[:16]
        for name in snap["tier_files"]
    }
    for record in snap["models"] + snap["pending"]:
        record["path"] = Path(record["path"]).name
    return snap


def _child(tmp: str, target: str, strategy: str | None, point: str) -> None:
    _, services = _open(Path(tmp))
    pid = services.db.pending.get_by_path(str(Path(tmp) / "models/checkpoints" / target))["id"]

    def die(*_args: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "after_commit":
        PromotionJournal.finish = lambda self, pending_id: die()  # type: ignore[method-assign]
        services.promoter.promote(pid, strategy)
    else:
        services.promoter.promote(pid, strategy, on_outcome=die)
    os._exit(3)  # not reached


@pytest.mark.parametrize(
    ("target", "strategy"),
    [
        ("fresh.safetensors", None),
        ("new.safetensors", "override"),
        ("new.safetensors", "merge"),
        ("new.safetensors", "delete"),
    ],
)
@pytest.mark.parametrize("point", ["in_transaction", "after_commit"])
def test_kill_during_promotion_converges(
    tmp_path: Path, target: str, strategy: str | None, point: str
) -> None:
    # The reference: the same promotion, never interrupted.
    _, ref = _open(tmp_path / "ref")
    ref_id = _setup(ref, tmp_path / "ref" / "models")[target]
    expected_result = ref.promoter.promote(ref_id, strategy)
    expected = _snapshot(ref)
    ref.close()

    _, services = _open(tmp_path / "crash")
    _setup(services, tmp_path / "crash" / "models")
    services.close()
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child, args=(str(tmp_path / "crash"), target, strategy, point))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    _, services = _open(tmp_path / "crash")  # reopening recovers the dead child's journal
    try:
        assert services.db.state.get(JOURNAL_KEY) == {"entries": {}}
        pending = services.db.pending.get_by_path(
            str(tmp_path / "crash" / "models/checkpoints" / target)
        )
        if point == "in_transaction":
            assert pending is not None  # nothing was committed
            assert pending["status"] == "hashing"  # the kill left it mid-work
            result = services.promoter.promote(pending["id"], strategy)
            assert result["action_taken"] == expected_result["action_taken"]
        else:
            assert pending is None  # committed before the kill
        assert _snapshot(services) == expected
    finally:
        services.close()
