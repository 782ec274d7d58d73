"""Root names (``HIKAZE_ROOT_NAMES``): below a named root the catalog keeps a location,
``(root name, relative path)``, and each host shows its own path for it.

"One NAS folder reached through two paths" is two folders whose files are hard links of
one another: the same files (the same inodes), at two different paths, as two hosts'
mounts of one share are.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import open_library
from hikaze_mm.database.listing import ModelQuery
from hikaze_mm.database.locations import Locations, root_of
from hikaze_mm.library.catalog import push
from hikaze_mm.library.resolver import ModelResolver, ResolveError
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import write_model

config = on_each_backend()


# ---------------------------------------------------------------------- the mapping
def test_a_path_below_a_named_root_is_stored_as_its_location() -> None:
    here = Locations([("nas", Path("/mnt/nas")), ("loras", Path("/mnt/nas/loras"))])
    assert here.stored("/mnt/nas/checkpoints/x.safetensors") == "@nas/checkpoints/x.safetensors"
    # The deepest named root takes its own files.
    assert here.stored("/mnt/nas/loras/a/b.safetensors") == "@loras/a/b.safetensors"
    assert here.stored("/mnt/nas") == "@nas"
    # Not below a named root (nor a folder whose name only starts like one): as it is.
    assert here.stored("/mnt/nasty/x.safetensors") == "/mnt/nasty/x.safetensors"
    assert here.stored("/home/me/x.safetensors") == "/home/me/x.safetensors"
    assert here.stored("@nas/already") == "@nas/already"
    assert here.host("@nas/checkpoints/x.safetensors") == "/mnt/nas/checkpoints/x.safetensors"
    assert here.host("/home/me/x.safetensors") == "/home/me/x.safetensors"
    assert here.location("@nas/checkpoints/x.safetensors") == {
        "root": "nas",
        "path": "checkpoints/x.safetensors",
    }
    assert here.location("/home/me/x.safetensors") is None
    assert root_of("@loras/a") == "loras" and root_of("/a") is None


def test_a_location_is_nfc_with_slashes_and_maps_to_each_hosts_own_form() -> None:
    windows = Locations([("nas", Path("Z:\\models"))], sep="\\")
    name = unicodedata.normalize("NFD", "café.safetensors")
    stored = windows.stored(f"Z:\\models\\loras\\{name}")
    assert stored == "@nas/loras/" + unicodedata.normalize("NFC", "café.safetensors")
    linux = Locations([("nas", Path("/mnt/models"))])
    assert linux.host(stored) == "/mnt/models/loras/café.safetensors"
    assert windows.host(stored) == "Z:\\models\\loras\\café.safetensors"


def test_a_case_insensitive_host_finds_its_root_in_any_case() -> None:
    """On Windows a path below ``Z:\\Models`` may come as ``z:\\models\\...``: it is below the
    root (compared as the file system does); the relative part keeps its own case."""
    import ntpath

    windows = Locations([("nas", Path("Z:\\Models"))], sep="\\", fold=ntpath.normcase)
    assert windows.stored("z:\\models\\LoRAs\\X.safetensors") == "@nas/LoRAs/X.safetensors"
    linux = Locations([("nas", Path("/mnt/Models"))])
    assert linux.stored("/mnt/models/x.safetensors") == "/mnt/models/x.safetensors"


def test_a_location_on_a_root_this_host_does_not_mount_has_no_path_here() -> None:
    here = Locations([("nas", Path("/mnt/nas"))])
    assert here.host("@other/x.safetensors") is None
    assert not here.mounted("@other/x.safetensors")
    assert here.shown("@other/x.safetensors") == "@other/x.safetensors"
    rows = [("@other/a", "1"), ("@nas/b", "2"), ("/local/c", "3")]
    assert here.here(rows) == [("/mnt/nas/b", "2"), ("/local/c", "3")]
    assert Locations().here(rows) == [("/local/c", "3")]  # a host that names no root


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("nas", "is not NAME=DIR"),
        ("=/x", "is not a root name"),
        ("bad name=/x", "is not a root name"),
        ("-x=/x", "is not a root name"),
        ("nas=/", "cannot be the file system's root"),
        (f"nas=/a{os.pathsep}nas=/b", "named twice"),
        (f"a=/x{os.pathsep}b=/x", "named twice"),
    ],
)
def test_bad_root_names_are_refused_naming_the_variable(value: str, fault: str) -> None:
    with pytest.raises(ValueError, match="HIKAZE_ROOT_NAMES") as caught:
        Config.load(data_dir="/tmp/x", env={"HIKAZE_ROOT_NAMES": value})
    assert fault in str(caught.value)


def test_a_named_root_is_a_model_root_unless_one_holds_it(tmp_path: Path) -> None:
    env = {"HIKAZE_ROOT_NAMES": f"nas={tmp_path}/nas{os.pathsep}sub={tmp_path}/models/sub"}
    loaded = Config.load(data_dir=tmp_path / "d", model_roots=[str(tmp_path / "models")], env=env)
    assert loaded.root_names == (("nas", tmp_path / "nas"), ("sub", tmp_path / "models/sub"))
    assert [root.path for root in loaded.model_roots] == [tmp_path / "models", tmp_path / "nas"]


# ---------------------------------------------------------------------- one host
def named(config: Config, name: str, mount: Path, **changes: Any) -> Config:
    """``config`` as a host that mounts the NAS at ``mount`` and names it ``nas``."""
    from dataclasses import replace

    data = config.data_dir.parent / f"data-{name}"
    return replace(
        config,
        data_dir=data,
        db_path=data / "hikaze_mm.db" if config.database_url else config.db_path,
        host_name=name,
        model_roots=(*config.model_roots, *(() if mount is None else [_root(mount)])),
        root_names=(("nas", mount),) if mount is not None else (),
        **changes,
    )


def _root(path: Path) -> Any:
    from hikaze_mm.config import ModelRoot

    return ModelRoot(path)


def mirror(source: Path, target: Path) -> None:
    """``target`` as a second mount of ``source``: each file a hard link of the other."""
    for folder, _dirs, files in os.walk(source):
        here = target / Path(folder).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for file in files:
            if not (here / file).exists():
                os.link(Path(folder) / file, here / file)


def stored_paths(svc: Services, table: str) -> list[str]:
    return sorted(path for (path,) in svc.db.tuples(f"SELECT path FROM {table}"))


def test_a_scan_below_a_named_root_keeps_locations_and_shows_this_hosts_paths(
    config: Config, tmp_path: Path
) -> None:
    nas = tmp_path / "nas-a"
    sha = write_model(nas / "checkpoints" / "sd" / "x.safetensors", 4096)
    svc = Services.open(named(config, "host-a", nas))
    try:
        svc.scanner.scan(immediate_hashing=True)
        assert stored_paths(svc, "models") == ["@nas/checkpoints/sd/x.safetensors"]
        record = svc.db.models.get(sha)
        assert record is not None
        assert record["path"] == str(nas / "checkpoints" / "sd" / "x.safetensors")
        assert record["location"] == {"root": "nas", "path": "checkpoints/sd/x.safetensors"}
        assert record["mounted"] is True and record["missing"] is False
        # The listing shows this host's path, and filters by this host's folders.
        page = svc.models.list(ModelQuery(folder=str(nas / "checkpoints")))
        assert page["total"] == 1 and page["items"][0]["path"] == record["path"]
        item = page["items"][0]
        assert item["location"]["root"] == "nas" and item["missing"] is False
        assert svc.models.list(ModelQuery(folder=str(nas / "loras")))["total"] == 0
        # A second scan finds the model where it was: nothing new, nothing missing.
        report = svc.scanner.scan(immediate_hashing=True)
        assert report.counts.new == 0 and report.missing == []
        assert svc.db.models.get(sha)["missing"] is False
        # A rename below the root is followed (a location, renamed).
        os.rename(
            nas / "checkpoints" / "sd" / "x.safetensors", nas / "checkpoints" / "y.safetensors"
        )
        svc.scanner.scan(immediate_hashing=True)
        assert stored_paths(svc, "models") == ["@nas/checkpoints/y.safetensors"]
    finally:
        svc.close()


# ---------------------------------------------------------------------- hosts of a studio
@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_each_host_shows_its_own_mount_and_leaves_other_roots_alone(
    config: Config, tmp_path: Path
) -> None:
    """Host A mounts the NAS at one path, host B at another, host C not at all: each sees
    the model A scanned at its own path (C: missing here, with its location), B's scan
    changes nothing, and C's scan flags nothing missing."""
    nas_a, nas_b = tmp_path / "nas-a", tmp_path / "nas-b"
    sha = write_model(nas_a / "loras" / "style.safetensors", 4096)
    mirror(nas_a, nas_b)
    a = Services.open(named(config, "host-a", nas_a))
    b = Services.open(named(config, "host-b", nas_b))
    c = Services.open(named(config, "host-c", None))
    try:
        a.scanner.scan(immediate_hashing=True)
        assert b.db.models.get(sha)["path"] == str(nas_b / "loras" / "style.safetensors")
        assert a.db.models.get(sha)["path"] == str(nas_a / "loras" / "style.safetensors")
        report = b.scanner.scan(immediate_hashing=True)
        assert (report.counts.new, report.counts.missing, report.missing) == (0, 0, [])
        assert stored_paths(b, "models") == ["@nas/loras/style.safetensors"]
        # B read nothing: its cache row for the location is taken from A's hash.
        assert b.hashes.totals()["hashed_files"] == 0
        assert a.hashes.totals()["hashed_files"] == 1
        cached = sorted(b.db.tuples("SELECT host, path, sha256 FROM hash_cache"))
        assert cached == [
            ("host-a", "@nas/loras/style.safetensors", sha),
            ("host-b", "@nas/loras/style.safetensors", sha),
        ]
        assert b.scanner.scan().counts.unchanged == 1  # and B's own row answers next time

        seen_by_c = c.db.models.get(sha)
        assert seen_by_c["missing"] is True and seen_by_c["mounted"] is False
        assert seen_by_c["path"] == "@nas/loras/style.safetensors"
        item = c.models.list(ModelQuery(include_missing=True))["items"][0]
        assert item["missing"] is True
        assert item["location"] == {"root": "nas", "path": "loras/style.safetensors"}
        c.scanner.scan(immediate_hashing=True)
        assert a.db.models.get(sha)["missing"] is False  # C's scan left it alone
        with pytest.raises(ResolveError, match="root 'nas', which this host does not mount"):
            resolver = ModelResolver(c.db, c.hashes, lambda: c.config.model_roots, _no_name)
            resolver.resolve(_Ref(sha), "loras")
        assert c.db.models.get(sha)["path"] == "@nas/loras/style.safetensors"
    finally:
        for svc in (a, b, c):
            svc.close()


def _no_name(_folder: str, _name: str) -> None:
    return None


class _Ref:
    def __init__(self, sha256: str) -> None:
        self.sha256, self.name, self.path = sha256, None, None

    def label(self) -> str:
        return self.sha256[:10]


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_catalog_push_turns_a_machines_paths_into_locations(config: Config, tmp_path: Path):
    """A machine's own SQLite library (absolute paths) pushed into a studio's catalog with
    ``--merge``: its models below the named root arrive as locations."""
    from dataclasses import replace

    nas = tmp_path / "nas"
    sha = write_model(nas / "checkpoints" / "x.safetensors", 4096)
    own = replace(named(config, "host-a", nas), database_url=None, root_names=())
    local = Services.open(own)
    try:
        local.scanner.scan(immediate_hashing=True)
        assert stored_paths(local, "models") == [str(nas / "checkpoints" / "x.safetensors")]
    finally:
        local.close()
    studio = named(config, "host-a", nas)
    source = open_library(replace(studio, database_url=None))
    try:
        push(studio, source, config.database_url, merge=True)
    finally:
        source.close()
    svc = Services.open(studio)
    try:
        assert stored_paths(svc, "models") == ["@nas/checkpoints/x.safetensors"]
        assert svc.db.models.get(sha)["path"] == str(nas / "checkpoints" / "x.safetensors")
    finally:
        svc.close()


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_hosts_sharing_an_images_folder_take_numbers_from_the_catalog(
    config: Config, tmp_path: Path
) -> None:
    """Two hosts write one images folder: the numbers of a model's images come from the
    catalog, so a host whose view of the folder is behind never takes a number another
    host took; an image stored on A is served by B, in the order chosen on A."""
    nas = tmp_path / "nas"
    sha = write_model(nas / "loras" / "x.safetensors", 4096)
    shared = tmp_path / "shared-images"
    a = Services.open(named(config, "host-a", nas, images_folder=shared))
    b = Services.open(named(config, "host-b", nas, images_folder=shared))
    try:
        a.scanner.scan(immediate_hashing=True)
        png = _png()
        first = a.images.add_image(sha, png)
        assert b.images.image_names(sha) == [f"{sha}_{first}.webp"]
        # B's next number is past A's even where a file of A's is not on disk yet.
        taken = a.images.claim_seq(sha)
        assert b.images.claim_seq(sha) == taken + 1
        assert a.images.claim_seq(sha) == taken + 2
        assert b.db.tuples("SELECT next_seq FROM image_seqs WHERE sha256 = ?", (sha,)) == [
            (taken + 3,)
        ]
        # An order chosen on A is B's at once (the catalog keeps it; no file is written).
        second = a.images.add_image(sha, png)
        assert a.images.set_order(sha, [second, first]) == [second, first]
        assert b.images.list_seqs(sha) == [second, first]
        assert not (shared / "order").exists()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("config", ["postgres"], indirect=True)
def test_an_order_file_copied_into_the_shared_folder_keeps_its_cover(
    config: Config, tmp_path: Path
) -> None:
    """A machine's own library keeps a chosen order in a file; its images folder copied
    into the studio's keeps that order (and so its cover) on every host, until someone
    chooses another: then the catalog's order is every host's and the file is gone."""
    from dataclasses import replace

    nas = tmp_path / "nas"
    sha = write_model(nas / "loras" / "x.safetensors", 4096)
    own_images = tmp_path / "own-images"
    own = Services.open(
        replace(named(config, "host-a", nas, images_folder=own_images), database_url=None)
    )
    try:
        own.scanner.scan(immediate_hashing=True)
        first, second = (own.images.add_image(sha, _png()) for _ in range(2))
        own.images.set_order(sha, [second, first])
    finally:
        own.close()
    # The README's steps: push the library with --merge, copy its images folder.
    source = open_library(replace(named(config, "host-a", nas), database_url=None))
    try:
        push(named(config, "host-a", nas), source, config.database_url, merge=True)
    finally:
        source.close()
    shared = tmp_path / "shared-images"
    shutil.copytree(own_images, shared)
    a = Services.open(named(config, "host-a", nas, images_folder=shared))
    b = Services.open(named(config, "host-b", nas, images_folder=shared))
    try:
        assert a.images.list_seqs(sha) == b.images.list_seqs(sha) == [second, first]
        assert b.images.set_order(sha, [first, second]) == [first, second]
        assert a.images.list_seqs(sha) == [first, second]
        assert not (shared / "order" / f"{sha}.json").exists()
        third = a.images.add_image(sha, _png())
        assert third > second  # the catalog numbers past the copied files
        assert b.images.list_seqs(sha) == [first, second, third]
    finally:
        a.close()
        b.close()


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()
