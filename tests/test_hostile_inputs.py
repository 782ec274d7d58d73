"""Hostile and malformed input on a real server: every mistake is a 4xx with
``{error, detail}``, never a 5xx, and it changes nothing."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import re
from pathlib import Path

import pytest

from hikaze_mm.server.app import ROUTE_MODULES
from tests.library_helpers import seed_model, services_of
from tests.test_legacy_import import dump_v3

DEEP = "[" * 100_000  # well under the body cap, far past any recursion limit
HUGE = 10**30  # past SQLite's 64-bit integers
LONG_NAME = "a" * 300  # a path component past the file systems' 255 bytes


async def raw_request(client, method: str, target: str, headers: dict[str, str], body=b""):
    """Send bytes as they are (no client-side checks on Host or Origin); status and JSON."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(payload) if payload.startswith(b"{") else None


def _json_routes() -> list[tuple[str, str]]:
    """Every route that reads a JSON body, with sample path parameters filled in."""
    found = []
    for module in ROUTE_MODULES:
        for route in module.routes:
            source = inspect.getsource(route.handler)
            if "read_json(" in source or "optional_json(" in source:
                path = re.sub(r"\{sha256\}", "a" * 64, route.path)
                path = re.sub(r"\{\w+\}", "1", path)
                found.append((route.method, path))
    return found


def assert_client_error(status: int, body: dict | None) -> None:
    assert 400 <= status < 500, (status, body)
    assert body is not None and body["error"] and body["detail"], body


@pytest.mark.parametrize("method,path", _json_routes())
async def test_deeply_nested_json_is_a_400_on_every_json_route(client, method, path) -> None:
    svc = services_of(client)
    before = dump_v3(svc.db)
    resp = await client.request(
        method, path, data=DEEP, headers={"Content-Type": "application/json"}
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert "nests deeper than 64" in body["detail"]
    assert dump_v3(svc.db) == before


async def test_meta_json_nested_too_deep_is_refused_as_object_and_as_text(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "deep")
    before = dump_v3(svc.db)
    nested: dict = {}
    for _ in range(70):
        nested = {"k": nested}
    for meta in (nested, '{"k":' * 1000 + "1" + "}" * 1000):
        resp = await client.patch(f"/api/models/{sha}", json={"meta_json": meta})
        assert resp.status == 400
        assert "nests deeper than 64" in (await resp.json())["detail"]
    text = "{" + '"k":{' * 1500 + "}" * 1501  # past the JSON parser's own recursion limit
    resp = await client.patch(f"/api/models/{sha}", json={"meta_json": text})
    assert resp.status == 400
    assert dump_v3(svc.db) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "["},
        {"Host": "[::1"},
        {"Host": "127.0.0.1", "Origin": "http://["},
        {"Host": "127.0.0.1", "Origin": "http://[::1"},
    ],
)
async def test_malformed_host_or_origin_is_refused(client, headers) -> None:
    body = json.dumps({"name": "x"}).encode()
    status, answer = await raw_request(
        client, "POST", "/api/tags", {**headers, "Content-Type": "application/json"}, body
    )
    assert status in (400, 403)
    assert_client_error(status, answer)
    assert services_of(client).db.tags.list() == []


@pytest.mark.parametrize(
    "path",
    [
        f"/api/models?offset={HUGE}",
        f"/api/models?limit={HUGE}",
        f"/api/migration/pending?offset={HUGE}",
        f"/api/migration/pending/{HUGE}",
        f"/api/images/pending/{HUGE}",
        f"/api/images/pending/1?n={HUGE}",
    ],
)
async def test_integers_beyond_64_bits_in_queries_and_paths(client, path) -> None:
    resp = await client.get(path)
    body = await resp.json()
    assert_client_error(resp.status, body)
    assert resp.status in (400, 404)
    # The message is true: no "non-negative" for a positive number, no unfinished range.
    assert 'between 0"' not in body["detail"] and not body["detail"].endswith("between 0")


async def test_integers_beyond_64_bits_in_bodies(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "ints")
    before = dump_v3(svc.db)
    for method, path, payload in [
        ("POST", "/api/migration/import_a_model", {"id": HUGE}),
        ("POST", "/api/migration/import_models", {"ids": [1, HUGE]}),
        ("PATCH", f"/api/models/{sha}", {"tags": {"add": [HUGE]}}),
        ("PATCH", f"/api/models/{sha}", {"tags": {"remove": [-HUGE]}}),
        ("PATCH", f"/api/tags/{HUGE}", {"name": "x"}),
    ]:
        resp = await client.request(method, path, json=payload)
        body = await resp.json()
        assert resp.status == 400, (path, body)
        assert f"from 0 to {2**63 - 1}" in body["detail"] or "at most 18 digits" in (body["detail"])
    assert dump_v3(svc.db) == before


async def test_lone_surrogates_in_names_tags_and_paths(client, tmp_path: Path) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "surrogate")
    before = dump_v3(svc.db)
    bad = "\ud800"
    for method, path, payload in [
        ("PATCH", f"/api/models/{sha}", {"name": bad}),
        ("PATCH", f"/api/models/{sha}", {"tags": {"add": [f"x{bad}"]}}),
        ("PATCH", f"/api/models/{sha}", {"meta_json": {bad: 1}}),
        ("POST", "/api/tags", {"name": bad}),
        ("POST", "/api/migration/migrate_legacy_db", {"legacy_db_path": f"/tmp/{bad}"}),
        ("POST", "/api/migration/start", {"legacy_db_path": f"/tmp/{bad}"}),
        ("POST", "/api/models/sha256", {"path": f"{tmp_path}/{bad}"}),
    ]:
        data = json.dumps(payload)  # ensure_ascii: the surrogate travels as \ud800
        resp = await client.request(
            method, path, data=data, headers={"Content-Type": "application/json"}
        )
        body = await resp.json()
        assert resp.status == 400, (path, body)
        assert "not valid Unicode" in body["detail"]
    assert dump_v3(svc.db) == before


async def test_a_content_encoding_that_does_not_match_the_body(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "encoded")
    for encoding in ("gzip", "deflate"):
        for target, content_type, body in (
            ("/api/tags", "application/json", b'{"name": "plain"}'),
            (f"/api/images/{sha}", "image/png", b"\x89PNG not really"),
        ):
            headers = {
                "Host": "127.0.0.1",
                "Content-Type": content_type,
                "Content-Encoding": encoding,
            }
            status, answer = await raw_request(client, "POST", target, headers, body)
            assert status == 400, answer
            assert answer["detail"] == (
                f"the request body cannot be read: Can not decode content-encoding: {encoding}"
            )
    assert svc.db.tags.list() == [] and svc.images.image_names(sha) == []
    # A body that really is gzip is read as JSON.
    resp = await client.post(
        "/api/tags",
        data=gzip.compress(b'{"name": "zipped"}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert resp.status == 201
    assert [t["name"] for t in svc.db.tags.list()] == ["zipped"]


async def test_a_malformed_multipart_upload(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "multipart")
    for body in (
        b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nxx',  # never closed
        b"garbage without any boundary",
        b'--b\r\nContent-Disposition: form-data; name="image"\r\nBroken header\r\n\r\nx\r\n--b--',
    ):
        resp = await client.post(
            f"/api/images/{sha}",
            data=body,
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert_client_error(resp.status, await resp.json())
    assert svc.images.image_names(sha) == []


@pytest.mark.parametrize(
    "path,payload",
    [
        ("/api/migration/migrate_legacy_db", {"legacy_db_path": "~nosuchuser_hikaze/x.db"}),
        ("/api/migration/start", {"legacy_db_path": "~nosuchuser_hikaze/x.db"}),
        ("/api/migration/migrate_legacy_db", {"legacy_db_path": f"/tmp/{LONG_NAME}/x.db"}),
        ("/api/migration/start", {"legacy_db_path": f"/tmp/{LONG_NAME}"}),
        ("/api/migration/start", {"legacy_db_path": "/tmp/" + "b/" * 3000}),
        ("/api/models/sha256", {"path": f"/tmp/{LONG_NAME}"}),
    ],
)
async def test_unknown_users_and_overlong_paths(client, path, payload) -> None:
    svc = services_of(client)
    before = dump_v3(svc.db)
    resp = await client.post(path, json=payload)
    body = await resp.json()
    assert resp.status == 400, body
    assert dump_v3(svc.db) == before


async def test_an_overlong_static_name_is_a_404(client) -> None:
    resp = await client.get(f"/static/{LONG_NAME}.js")
    assert resp.status == 404
    assert (await resp.json())["error"]


HOSTILE_SEGMENTS = ["9" * 30, "-1", "\u2603", LONG_NAME, "%ED%A0%80", "..%2F..%2Fetc", "a" * 64]
HOSTILE_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'{"id": "1", "ids": {}, "name": [], "path": 5, "tags": 3, "conf_strategy": 7}',
    json.dumps({"id": HUGE, "ids": [HUGE], "legacy_db_path": LONG_NAME}).encode(),
    b'{"name": "\\ud800", "path": "\\udfff", "hash": "\\ud800"}',
    b"\xff\xfe not utf-8",
]


async def test_no_route_answers_5xx_to_hostile_input(client) -> None:
    """Every route, every hostile path segment and body: a 2xx-4xx answer, never a 5xx."""
    statuses: dict[int, int] = {}
    for module in ROUTE_MODULES:
        for route in module.routes:
            if route.method == "HEAD":
                continue
            params = re.findall(r"\{(\w+)(?::[^}]*)?\}", route.path)
            segments = HOSTILE_SEGMENTS if params else [None]
            for segment in segments:
                path = re.sub(r"\{\w+(?::[^}]*)?\}", segment or "", route.path) or "/"
                bodies = HOSTILE_BODIES if route.method in ("POST", "PATCH") else [b""]
                for body in bodies:
                    resp = await client.request(
                        route.method,
                        path,
                        data=body,
                        headers={"Content-Type": "application/json"},
                    )
                    assert resp.status < 500, (route.method, path, body, await resp.text())
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
    assert sum(statuses.values()) > 300 and any(400 <= s < 500 for s in statuses)
