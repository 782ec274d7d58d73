"""``WorkflowService``: the models a workflow (or an image's workflow) needs, which of them
the library lacks, where to get those, and fetching them.

``missing`` reads the workflow (``workflow.needs``), matches each model to the library
(by hash, else by file name) and, for each one it lacks, looks for a source when asked
(``lookup``): the workflow's own URL, else the hash on Civitai (then its second site).
Lookups leave this machine, so they happen only on request; without one, a URL the
workflow gives is reported as its source as it stands. ``fetch_missing`` queues a
download for each missing model with a source (a file a core loader names is saved under
that name, so the workflow finds it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from hikaze_mm.credits.containers import MAX_INSPECT_BYTES, read_metadata
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import HikazeError, ValidationError
from hikaze_mm.library.download_sources import SourceNotFound, SourceSettings, resolve
from hikaze_mm.workflow.needs import CORE_LOADERS, Need, needs_of

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
LOOKUP_CONCURRENCY = 4

# ``downloads.enqueue``: (source, type, sha256, file_name) -> {"id", "status"}.
Enqueue = Callable[..., dict[str, Any]]


def workflow_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow a request gives: the body itself (UI or API shape), or the one an
    image carries (``{"image": <base64>}``: its ``workflow`` chunk, else its ``prompt``)."""
    image = body.get("image")
    if image is None:
        return dict(body)
    if not isinstance(image, str) or len(image) > MAX_INSPECT_BYTES * 4 // 3 + 4:
        raise ValidationError("image must be a PNG, WebP or JPEG in base64, at most 32 MiB")
    try:
        data = base64.b64decode(image.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("image is not valid base64") from None
    meta = read_metadata(data)
    workflow = meta.workflow if isinstance(meta.workflow, dict) else meta.prompt
    if not isinstance(workflow, dict):
        raise ValidationError("the image carries no ComfyUI workflow")
    return workflow


class WorkflowService:
    def __init__(
        self, db: Library, sources: SourceSettings, enqueue: Enqueue | None = None
    ) -> None:
        self.db = db
        self.sources = sources
        self.enqueue = enqueue

    def missing(self, body: Mapping[str, Any], *, lookup: bool = True) -> dict[str, Any]:
        """``{resources: [{node_id, node_type, folder, name, sha256, autov2, in_library,
        path, found: {source, size, name} | null}]}``."""
        resources = [self._resource(need) for need in needs_of(workflow_of(body))]
        wanted = [r for r in resources if not r["in_library"]]
        if lookup and wanted:
            asyncio.run(self._look_up(wanted))
        else:  # no one asked: the workflow's own URLs are sources as they stand
            for resource in wanted:
                if resource["url"]:
                    name = resource["url"].rsplit("/", 1)[-1].split("?", 1)[0]
                    resource["found"] = {"source": resource["url"], "size": None, "name": name}
        for resource in resources:
            resource.pop("url", None)
        return {"resources": resources}

    def fetch_missing(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Queue a download for each missing model with a source: ``{downloads: [{id,
        status, name, folder, source}], without_source: [names]}``."""
        if self.enqueue is None:
            raise ValidationError("downloads are not available in this process")
        found = self.missing(body)["resources"]
        queued, without = [], []
        for resource in (r for r in found if not r["in_library"]):
            source = resource["found"]
            if source is None:
                without.append(resource["name"])
                continue
            # A core loader names its file: saved under that name, the workflow finds it.
            name = resource["name"] if resource["node_type"] in CORE_LOADERS else None
            answer = self.enqueue(
                source["source"],
                type=resource["folder"],
                sha256=resource["sha256"],
                file_name=name,
            )
            queued.append({**answer, "name": resource["name"], "folder": resource["folder"],
                           "source": source["source"]})  # fmt: skip
        return {"downloads": queued, "without_source": without}

    # ------------------------------------------------------------ the library
    def _resource(self, need: Need) -> dict[str, Any]:
        model = self._model_for(need)
        sha = model["sha256"] if model else need.sha256
        return {
            "node_id": need.node_id,
            "node_type": need.node_type,
            "folder": need.folder,
            "name": need.name,
            "sha256": sha,
            "autov2": sha[:10].upper() if sha else None,
            "in_library": model is not None,
            "path": model["path"] if model else None,
            "found": None,
            "url": need.url,
        }

    def _model_for(self, need: Need) -> dict[str, Any] | None:
        """The library's present model for a need: by its hash, else by its file name."""
        shas = [need.sha256] if need.sha256 else self.db.models.with_file_name(need.name)
        for sha in shas:
            model = self.db.models.get(sha)
            if model is not None and not model["missing"]:
                return model
        return None

    # ------------------------------------------------------------ sources
    async def _look_up(self, resources: list[dict[str, Any]]) -> None:
        gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)
        async with aiohttp.ClientSession(timeout=LOOKUP_TIMEOUT) as session:

            async def one(resource: dict[str, Any]) -> None:
                async with gate:
                    resource["found"] = await self._source_for(session, resource)

            await asyncio.gather(*(one(r) for r in resources))

    async def _source_for(
        self, session: aiohttp.ClientSession, resource: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The workflow's own URL, else Civitai by hash; None when nothing has it."""
        if resource["url"]:
            query = resource["url"]
            options: dict[str, Any] = {"sha256": resource["sha256"]}
        elif resource["sha256"]:
            query, options = f"sha256:{resource['sha256']}", {}
        else:
            return None
        try:
            found = await resolve(query, session, self.sources, **options)
        except SourceNotFound:
            return None
        except HikazeError as exc:  # unreachable, refused: said once, the rest goes on
            log.warning("no source for %s: %s", resource["name"], exc.detail)
            return None
        return {"source": query, "size": found.size, "name": found.file_name}
