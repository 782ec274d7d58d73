"""Shared fixtures: every test gets its own data dir under pytest's tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.helpers import CLI_DB_URL
from tests.pg_cluster import PgServer, build_template, pg_server

# The browser tests' fixtures (browser, library, live, page; Playwright loads lazily), the
# real ComfyUI's, ``fake``, our Civitai stand-in, ``hf``, our Hugging Face one, and
# ``storage``, our storage host.
pytest_plugins = [
    "tests.browser",
    "tests.comfyui_harness",
    "tests.civitai_fake",
    "tests.hf_fake",
    "tests.storage_fake",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_civitai: the browser tests' library asks the ``fake`` Civitai stand-in"
    )


# No test may read or write a user's real data dir through the environment.
# Nor reach Civitai: tests that look models up point HIKAZE_CIVITAI_URL at their own server.
for _var in (
    "HIKAZE_DATA_DIR",
    "HIKAZE_DB_PATH",
    "HIKAZE_MODEL_ROOTS",
    "HIKAZE_CIVITAI_URL",
    "HIKAZE_CIVITAI_TOKEN",
    "HIKAZE_CIVITAI_AUTO",
    "HIKAZE_CIVITAI_MAX_NSFW",
    "HIKAZE_CIVITAI_NSFW_URL",
    "HIKAZE_HF_URL",
    "HIKAZE_HF_TOKEN",
    "HIKAZE_WATCH",
    "HIKAZE_RESCAN_INTERVAL",
    "HIKAZE_DOWNLOAD_TEMPLATE",
    "HIKAZE_DOWNLOAD_CONCURRENCY",
    "HIKAZE_DB_URL",
    "HIKAZE_HOST_NAME",
    "HIKAZE_ROOT_NAMES",
    "HIKAZE_IMAGES_DIR",
):
    os.environ.pop(_var, None)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    return root


@pytest.fixture
def config(request: pytest.FixtureRequest, data_dir: Path, models_root: Path) -> Config:
    """A fresh library's configuration: its SQLite file in ``data_dir``, or with
    ``HIKAZE_TEST_BACKEND=postgres`` a PostgreSQL database of the test's own (to run any
    test module on that backend)."""
    # A closed port on this machine: a Civitai lookup no test arranged fails here, at once.
    env = {"HIKAZE_CIVITAI_URL": "http://127.0.0.1:9", "HIKAZE_HF_URL": "http://127.0.0.1:9"}
    if os.environ.get("HIKAZE_TEST_BACKEND") == "postgres":
        env["HIKAZE_DB_URL"] = request.getfixturevalue("pg_url")
        cli_follows(request, env["HIKAZE_DB_URL"])
    return Config.load(data_dir=data_dir, model_roots=[str(models_root)], env=env)


def cli_follows(request: pytest.FixtureRequest, url: str) -> None:
    """The test's CLI subprocesses (``helpers.cli_env``) open the library at ``url`` too."""
    request.getfixturevalue("monkeypatch").setenv(CLI_DB_URL, url)


@pytest.fixture
def services(config: Config) -> Iterator[Services]:
    svc = Services.open(config)
    yield svc
    svc.close()


@pytest.fixture
async def client(aiohttp_client, config: Config):
    """A real aiohttp server on 127.0.0.1 with a fresh library, and a client for it."""
    svc = Services.open(config)
    app = create_app(svc)
    return await aiohttp_client(app)


# ---------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgServer]:
    """The session's PostgreSQL server (tests/pg_cluster.py): a throwaway cluster, or the
    one ``HIKAZE_TEST_PG_DSN`` names."""
    yield from pg_server()


def _prepare_library(url: str) -> None:
    """The library's schema, built once in the template."""
    from dataclasses import replace

    from hikaze_mm.database import open_library

    config = replace(Config.load(data_dir="/nonexistent-hikaze-data", env={}), database_url=url)
    open_library(config).close()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgServer) -> Iterator[str]:
    """The template database every test's database is copied from."""
    name = build_template(pg_cluster, _prepare_library)
    yield name
    pg_cluster.drop_database(name)


# The backends a test module may run on: ``config = on_each_backend()`` in the module
# runs its tests once per backend (the library of ``config`` on each).
BACKEND_NAMES = ("sqlite", "postgres")


def on_each_backend() -> object:
    """A ``config`` fixture for a test module: the conftest ``config``, once with its
    SQLite file and once with a PostgreSQL database of the test's own (``pg_url``)."""

    @pytest.fixture(params=BACKEND_NAMES)
    def config(request: pytest.FixtureRequest, config: Config) -> Config:
        if request.param == "postgres":
            from dataclasses import replace

            url = request.getfixturevalue("pg_url")
            cli_follows(request, url)
            return replace(config, database_url=url)
        return config

    return config


# Marks a test of a module that runs on each backend as one of SQLite's own (its file,
# its upgrades, its query plans, or a command run in a subprocess on the data folder).
sqlite_only = pytest.mark.parametrize("config", ["sqlite"], indirect=True)


@pytest.fixture
def pg_url(pg_cluster: PgServer, pg_template: str) -> Iterator[str]:
    """The URL of a database of this test's own, a copy of the template."""
    name = pg_cluster.new_database(pg_template)
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)
