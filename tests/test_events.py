"""``GET /api/events``: the library's committed changes as Server-Sent Events, on both
backends; on PostgreSQL from every process of the catalog (two "hosts" on one database),
with ``resync`` after the listener's connection is lost; and the catalog-wide hold that
keeps one Civitai job at a time across hosts."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from hikaze_mm import __version__
from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import same_origin_headers, write_model

config = on_each_backend()
DEADLINE_S = 10.0


class EventStream:
    """An open ``GET /api/events`` response, read one event at a time."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def _event(self) -> tuple[str, dict[str, Any]]:
        kind, data = "", ""
        while True:
            line = (await self.response.content.readline()).decode()
            if line == "":
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and kind:
                return kind, json.loads(data)

    async def until(
        self, kind: str, key: str | None = None, *, since: int | None = None
    ) -> dict[str, Any]:
        """The first event of ``kind`` (naming ``key``, if given) from now on, or among
        those seen already from index ``since``."""
        for event in self.seen[since:] if since is not None else ():
            if event[0] == kind and (key is None or key in event[1]["keys"]):
                return event[1]

        async def find() -> dict[str, Any]:
            while True:
                event = await self._event()
                self.seen.append(event)
                if event[0] == kind and (key is None or key in event[1]["keys"]):
                    return event[1]

        try:
            return await asyncio.wait_for(find(), DEADLINE_S)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {kind} event of {key!r}; seen: {self.seen}") from None


async def open_stream(client: Any) -> EventStream:
    response = await client.get("/api/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    first = await response.content.readline()
    assert first.startswith(b"retry:")
    return EventStream(response)


@pytest.fixture
async def client(aiohttp_client, config: Config):
    services = Services.open(replace(config, host_name="host-a"))
    return await aiohttp_client(create_app(services))


async def test_edits_through_the_api_reach_the_stream(client, models_root) -> None:
    stream = await open_stream(client)
    headers = same_origin_headers(client)
    resp = await client.post("/api/tags", json={"name": "portrait"}, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    tag_id = str((await resp.json())["id"])
    event = await stream.until("tags", tag_id)
    assert event == {"keys": [tag_id], "bulk": False, "host": "host-a"}

    sha = write_model(models_root / "loras" / "one.safetensors", 4096)
    resp = await client.post("/api/scan", json={"immediate_hashing": True}, headers=headers)
    assert resp.status == 202, await resp.text()
    assert (await stream.until("jobs", "scan"))["host"] == "host-a"  # it began
    await stream.until("models", sha)  # promoted
    resp = await client.patch(f"/api/models/{sha}", json={"name": "Renamed"}, headers=headers)
    assert resp.status == 200, await resp.text()
    await stream.until("models", sha)
    mark = len(stream.seen)
    resp = await client.patch(
        f"/api/models/{sha}", json={"tags": {"add": ["portrait", "new-one"]}}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    new_tag = str(_services(client).db.tags.get("new-one")["id"])
    await stream.until("models", sha, since=mark)  # its tags
    await stream.until("tags", new_tag, since=mark)  # the new tag, in the same commit
    stream.response.close()


async def test_the_hosts_of_the_library(client) -> None:
    hosts = await (await client.get("/api/hosts")).json()
    assert [(h["name"], h["release"]) for h in hosts] == [("host-a", __version__)]


async def test_a_change_rolled_back_sends_nothing(client) -> None:
    """A unit of work that fails sends none of its changes; the next one's come alone."""
    stream = await open_stream(client)
    services = _services(client)
    db = services.db

    def failed_then_committed() -> None:
        with pytest.raises(RuntimeError), db.transaction():
            db.tags.ensure("never")
            raise RuntimeError("undone")
        db.tags.ensure("kept")

    await asyncio.to_thread(failed_then_committed)
    kept = str(db.tags.get("kept")["id"])
    event = await stream.until("tags")
    assert event["keys"] == [kept]
    assert db.tags.get("never") is None
    stream.response.close()


def _services(client: Any) -> Services:
    from hikaze_mm.server.http import SERVICES_KEY

    return client.server.app[SERVICES_KEY]


# ---------------------------------------------------------------------- two hosts
def host_config(tmp_path: Any, url: str, name: str) -> Config:
    env = {
        "HIKAZE_HOST_NAME": name,
        "HIKAZE_DB_URL": url,
        "HIKAZE_CIVITAI_URL": "http://127.0.0.1:9",
    }
    return Config.load(data_dir=tmp_path / name, model_roots=[str(tmp_path / "nas")], env=env)


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
async def test_a_tag_edited_on_one_host_reaches_the_others_stream(
    aiohttp_client, config: Config, tmp_path, pg_cluster
) -> None:
    """Two processes of one catalog (their own data folders and host names): a tag made on
    A shows in B's API and B's event stream, saying it came from A; when B's listener
    loses its connection, B's stream says ``resync`` once it is back."""
    (tmp_path / "nas").mkdir()
    a = await aiohttp_client(
        create_app(Services.open(host_config(tmp_path, config.database_url, "host-a")))
    )
    b = await aiohttp_client(
        create_app(Services.open(host_config(tmp_path, config.database_url, "host-b")))
    )
    stream = await open_stream(b)
    b_db = _services(b).db
    assert await asyncio.to_thread(b_db.wait_listening, DEADLINE_S)
    resp = await a.post("/api/tags", json={"name": "shared"}, headers=same_origin_headers(a))
    assert resp.status in (200, 201), await resp.text()
    tag_id = str((await resp.json())["id"])
    assert await stream.until("tags", tag_id) == {"keys": [tag_id], "bulk": False, "host": "host-a"}
    names = [t["name"] for t in await (await b.get("/api/tags")).json()]
    assert "shared" in names
    seen = await (await a.get("/api/hosts")).json()  # the catalog knows both hosts
    assert sorted((h["name"], h["release"]) for h in seen) == [
        ("host-a", __version__),
        ("host-b", __version__),
    ]
    assert all(h["first_seen"] <= h["last_seen"] for h in seen)

    ended = await asyncio.to_thread(end_listeners, pg_cluster, config.database_url)
    assert ended == 1  # B's (A has no subscriber: it does not listen)
    assert (await stream.until("resync"))["host"] == "host-b"
    resp = await a.post("/api/tags", json={"name": "after"}, headers=same_origin_headers(a))
    after = str((await resp.json())["id"])
    await stream.until("tags", after)  # listening again
    stream.response.close()


def end_listeners(cluster: Any, url: str) -> int:
    """End the sessions listening for change events on the database of ``url``."""
    import psycopg

    from tests.test_pg_failures import database_of

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'LISTEN %%'",
                (database_of(url),),
            ).fetchall()
        )


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_one_civitai_job_at_a_time_across_the_catalog(config: Config, tmp_path) -> None:
    """A Civitai lookup or an update check holds ``civitai`` across the catalog: while host
    A holds it, B's are refused naming A (and change nothing); once A lets go, B's start."""
    from hikaze_mm.errors import ConflictError

    (tmp_path / "nas").mkdir()
    a = Services.open(host_config(tmp_path, config.database_url, "host-a"))
    b = Services.open(host_config(tmp_path, config.database_url, "host-b"))
    try:
        held = a.db.hold("civitai")
        with pytest.raises(ConflictError, match="Civitai lookup is already running on host-a"):
            b.civitai.start(sha256s=["a" * 64])
        with pytest.raises(ConflictError, match="update check is already running on host-a"):
            b.updates.start()
        assert not b.civitai.job.running and b.civitai.job.current is None
        held.release()  # as when A's process ends: its session lets go
        b.civitai.start(sha256s=["a" * 64])  # Civitai unreachable here: it ends soon
        assert b.civitai.wait(30)
        a.db.hold("civitai").release()  # B let go at its end: A may hold it again
    finally:
        a.close()
        b.close()
