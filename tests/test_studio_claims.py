"""Work split between the hosts of a studio: claims on pending rows with a lease and a
heartbeat, process liveness by session advisory locks, and two hosts scanning one NAS at
once hashing each file exactly once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.errors import LockedError
from hikaze_mm.pending.claims import Claims
from hikaze_mm.pending.journal import PromotionJournal
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import make_sparse, write_model
from tests.test_studio_roots import mirror, named
from tests.waiting import wait_until

config = on_each_backend()


def _queue(svc: Services, path: Path) -> int:
    return svc.db.pending.add({"path": str(path), "source": "scan", "type": "loras"})


# ---------------------------------------------------------------------- claims
def test_a_claimed_row_is_another_hosts_until_its_lease_runs_out(
    config: Config, tmp_path: Path
) -> None:
    a = Services.open(named(config, "host-a", tmp_path / "nas"))
    b = Services.open(named(config, "host-b", tmp_path / "nas"))
    try:
        ids = [_queue(a, tmp_path / "nas" / "loras" / f"m{i}.safetensors") for i in range(3)]
        mine = Claims(a.db, lease_seconds=0.3)
        theirs = Claims(b.db, lease_seconds=30)
        assert mine.take(ids[:2]) == ids[:2]
        assert theirs.take(ids) == [ids[2]]  # the rest is A's
        assert mine.take(ids[:2]) == ids[:2]  # a claim of one's own is taken again
        held = b.db.pending.get(ids[0])
        assert held["claimed_by"].startswith("host-a/")
        # A's heartbeat keeps its rows; once it stops, the lease runs out.
        before = held["lease_until"]
        time.sleep(0.15)
        mine.beat(ids[:2])
        assert b.db.pending.get(ids[0])["lease_until"] > before
        wait_until(lambda: theirs.take(ids[:1]) == ids[:1], timeout=5, message="the lease")
        theirs.release(ids)
        assert b.db.pending.get(ids[2])["claimed_by"] is None
        assert b.db.pending.get(ids[1])["claimed_by"].startswith("host-a/")  # not B's to free
    finally:
        a.close()
        b.close()


def test_a_promotion_of_a_row_another_host_hashes_is_refused_naming_it(
    config: Config, tmp_path: Path
) -> None:
    nas = tmp_path / "nas"
    write_model(nas / "loras" / "x.safetensors", 4096)
    a = Services.open(named(config, "host-a", nas))
    b = Services.open(named(config, "host-b", nas))
    try:
        pid = _queue(a, nas / "loras" / "x.safetensors")
        assert a.promoter.claims.take([pid]) == [pid]
        with pytest.raises(LockedError, match=f"pending model {pid} is being hashed on host-a"):
            b.promoter.promote(pid)
        assert b.hashes.totals()["hashed_files"] == 0
        assert a.promoter.promote(pid)["action_taken"] == "created"
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------------- liveness
@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_a_journal_entry_is_alive_while_its_process_session_is(
    config: Config, tmp_path: Path
) -> None:
    """In a shared catalog a journal entry names its process's session: another host sees
    it alive (pids mean nothing across hosts) until that session ends, then converges it."""
    a = Services.open(named(config, "host-a", tmp_path / "nas"))
    b = Services.open(named(config, "host-b", tmp_path / "nas"))
    try:
        a.promoter.journal.plan(7, "a" * 64, [], [])
        entry = b.promoter.journal.get(7)
        assert entry["owner"]["host"] == "host-a" and entry["owner"]["session"]
        assert b.promoter.journal.recover_dead() == 0  # alive: left alone
        with pytest.raises(LockedError, match=r"being promoted by process \d+ on host-a"):
            b.promoter.journal.recover_entry(7)
        a.promoter.journal.close()  # the session ends (as a host's that died)
        assert b.promoter.journal.recover_dead() == 1
        assert b.promoter.journal.get(7) is None
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_a_move_in_progress_on_one_host_is_left_to_it_by_another(
    config: Config, tmp_path: Path
) -> None:
    """The move journal's entries name their session too: a move A has under way is not
    converged by B (which would take it for a dead process's), until A's session ends."""
    a = Services.open(named(config, "host-a", tmp_path / "nas"))
    b = Services.open(named(config, "host-b", tmp_path / "nas"))
    try:
        a.organizer.journal.put("c" * 64, {"phase": "planned", "from": "/x", "to": "/y"})
        entry = b.organizer.journal.get("c" * 64)
        assert b.organizer.journal.owned_by_live_other(entry)
        assert b.organizer.journal.liveness.describe(entry).endswith("on host-a")
        a.organizer.journal.close()
        assert not b.organizer.journal.owned_by_live_other(entry)
    finally:
        a.close()
        b.close()


def test_a_journal_of_a_machines_own_library_names_no_session(
    config: Config, tmp_path: Path
) -> None:
    svc = Services.open(config)
    try:
        journal = PromotionJournal(svc.db, svc.images)
        journal.plan(3, "b" * 64, [], [])
        owner = journal.get(3)["owner"]
        assert owner["pid"] == os.getpid()
        assert ("session" in owner) == svc.db.shared
        journal.close()
    finally:
        svc.close()


# ---------------------------------------------------------------------- a dead host
def _hash_then_hang(config: Config, pid: int, started: str) -> None:
    """A host that claims ``pid``, starts hashing its file and hangs mid-read."""
    svc = Services.open(config)

    def hang(_path: str, done: int) -> None:
        Path(started).write_text(str(done))
        time.sleep(3600)

    svc.hashes.on_chunk = hang
    svc.promoter.promote(pid)


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_a_host_killed_mid_hash_leaves_its_claim_when_the_lease_runs_out(
    config: Config, tmp_path: Path
) -> None:
    nas = tmp_path / "nas"
    (nas / "loras").mkdir(parents=True)
    make_sparse(nas / "loras" / "big.safetensors", 64 * 1024 * 1024)
    host_a = named(config, "host-a", nas, claim_lease_seconds=1.5)
    setup = Services.open(host_a)
    try:
        pid = _queue(setup, nas / "loras" / "big.safetensors")
    finally:
        setup.close()
    started = tmp_path / "started"
    child = multiprocessing.get_context("fork").Process(
        target=_hash_then_hang, args=(host_a, pid, str(started))
    )
    child.start()
    try:
        wait_until(started.exists, timeout=60, message="host A to start hashing")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL
    b = Services.open(named(config, "host-b", nas))
    try:
        assert b.db.pending.get(pid)["claimed_by"].startswith("host-a/")
        with pytest.raises(LockedError, match="being hashed on host-a"):
            b.promoter.promote(pid)  # the lease of the dead host still runs

        def promoted() -> bool:
            try:
                return b.promoter.promote(pid)["action_taken"] == "created"
            except LockedError:
                return False

        wait_until(promoted, timeout=30, interval=0.2, message="host A's lease to run out")
        assert b.hashes.totals()["hashed_files"] == 1
        assert b.db.pending.get(pid) is None
    finally:
        b.close()


# ---------------------------------------------------------------------- two scans at once
@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_two_hosts_scanning_one_nas_at_once_hash_each_file_once(
    config: Config, tmp_path: Path
) -> None:
    nas_a, nas_b = tmp_path / "nas-a", tmp_path / "nas-b"
    shas = {write_model(nas_a / "loras" / f"m{i:02}.safetensors", 65536 + i) for i in range(40)}
    mirror(nas_a, nas_b)
    a = Services.open(named(config, "host-a", nas_a))
    b = Services.open(named(config, "host-b", nas_b))
    reports: dict[str, object] = {}
    try:

        def scan(name: str, svc: Services) -> None:
            reports[name] = svc.scanner.scan(immediate_hashing=True)

        threads = [threading.Thread(target=scan, args=(n, s)) for n, s in (("a", a), ("b", b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert set(reports) == {"a", "b"}
        read = a.hashes.totals()["hashed_files"] + b.hashes.totals()["hashed_files"]
        assert read == 40  # each file hashed exactly once, by one host or the other
        assert {m["sha256"] for m in _models(a)} == shas
        assert sum(r.counts.conflicts for r in reports.values()) == 0  # type: ignore[attr-defined]
        # What the other host still saw pending is promoted by a later scan of either.
        for svc in (a, b):
            svc.scanner.scan(immediate_hashing=True)
        assert a.db.pending.count() == 0
        assert a.hashes.totals()["hashed_files"] + b.hashes.totals()["hashed_files"] == 40
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_two_hosts_running_stage_2_at_once_each_report_their_own_run(
    config: Config, tmp_path: Path
) -> None:
    """Stage 2 (``promote --all``) on two hosts at once: the claims give each row to one
    of them, and each host's status counts its own run (the run state is per host in a
    shared catalog), so both end COMPLETED with counters that add up to the queue."""
    nas = tmp_path / "nas"
    for i in range(20):
        write_model(nas / "loras" / f"m{i:02}.safetensors", 65536 + i)
    a = Services.open(named(config, "host-a", nas))
    b = Services.open(named(config, "host-b", nas))
    try:
        a.scanner.scan()  # queues the files, hashing none
        assert a.db.pending.count() == 20
        for svc in (a, b):
            svc.migration.start_full_migration()
        assert a.migration.wait(60) and b.migration.wait(60)
        runs = [svc.migration.get_status() for svc in (a, b)]
        for run in runs:
            assert run["status"] == "COMPLETED"
            assert run["stats"]["processed_items"] == run["stats"]["total_items"]
            assert run["stats"]["promoted"] == run["stats"]["processed_items"]
        assert sum(run["stats"]["processed_items"] for run in runs) == 20
        assert a.db.pending.count() == 0
        assert a.hashes.totals()["hashed_files"] + b.hashes.totals()["hashed_files"] == 20
        # Each host's run is its own record: A's status read afresh is still A's.
        a.migration.tracker.reload()
        assert a.migration.get_status()["stats"] == runs[0]["stats"]
    finally:
        a.close()
        b.close()


def _models(svc: Services) -> list[dict]:
    return [
        {"sha256": sha} for (sha,) in svc.db.tuples("SELECT sha256 FROM models ORDER BY sha256")
    ]


# ---------------------------------------------------------------------- one scan of a root
@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_a_root_is_scanned_by_one_host_at_a_time_and_a_poll_skips_a_recent_scan(
    config: Config, tmp_path: Path
) -> None:
    nas_a, nas_b = tmp_path / "nas-a", tmp_path / "nas-b"
    sha = write_model(nas_a / "loras" / "x.safetensors", 4096)
    mirror(nas_a, nas_b)
    a = Services.open(named(config, "host-a", nas_a))
    b = Services.open(named(config, "host-b", nas_b))
    try:
        scanning = a.db.hold("scan:nas")  # A is scanning the root now
        report = b.scanner.scan()
        assert report.skipped_roots == [{"root": "nas", "reason": "being scanned on host-a"}]
        assert not b.db.models.exists(sha) and b.db.pending.count() == 0
        # With immediate hashing B helps: it promotes what A's scan queued there, until
        # A's scan ends.
        pid = _queue(a, nas_a / "loras" / "x.safetensors")
        helping = threading.Thread(target=b.scanner.scan, kwargs={"immediate_hashing": True})
        helping.start()
        wait_until(lambda: b.db.models.exists(sha), timeout=30, message="B to promote it")
        assert b.db.pending.get(pid) is None and b.hashes.totals()["hashed_files"] == 1
        assert helping.is_alive()  # still helping while A scans
        scanning.release()
        helping.join(30)
        assert not helping.is_alive()
        assert b.scanner.status()["last_report"]["counts"]["promoted"] == 1

        a.scanner.scan(immediate_hashing=True)
        assert a.hashes.totals()["hashed_files"] == 0  # B hashed it: A takes its hash
        # B's poll of the root finds A's scan a moment ago and leaves it; B's own
        # (explicit) scan still runs.
        polled = b.scanner.scan_folders([str(nas_b)], skip_recent_s=300)
        assert [r["root"] for r in polled.skipped_roots] == ["nas"]
        assert polled.skipped_roots[0]["reason"].startswith("scanned on host-a")
        assert polled.counts.files_seen == 0
        assert b.scanner.scan_folders([str(nas_b)]).counts.files_seen == 1
        assert b.scanner.scan_folders([str(nas_b)], skip_recent_s=300).skipped_roots == []
    finally:
        a.close()
        b.close()
