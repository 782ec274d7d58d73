"""The UI's files: how the server serves them (standalone and under a prefix), and static
checks of the sources (imports resolve, every string key exists, no HTML built from text,
relative URLs only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from hikaze_mm.config import Config
from hikaze_mm.server import mount
from hikaze_mm.server.routes.web_ui import WEB_DIR
from hikaze_mm.services import Services

JS_DIR = WEB_DIR / "js"
JS_FILES = sorted(JS_DIR.rglob("*.js"))


def test_web_folder_has_the_ui() -> None:
    assert (WEB_DIR / "index.html").is_file()
    assert (WEB_DIR / "css" / "app.css").is_file()
    names = {p.relative_to(JS_DIR).as_posix() for p in JS_FILES}
    for expected in (
        "app.js",
        "api.js",
        "i18n.js",
        "pages/library.js",
        "pages/details.js",
        "pages/pending.js",
        "pages/migration.js",
        "pages/migration/stage1.js",
        "pages/migration/stage2.js",
        "pages/migration/scan.js",
        "pages/migration/report.js",
    ):
        assert expected in names


async def test_index_is_served_with_a_strict_policy(client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert resp.headers["Cache-Control"] == "no-cache"
    html = await resp.text()
    assert '<script type="module" src="static/js/app.js">' in html
    # Relative URLs only, so the page works under any prefix.
    assert not re.search(r'(?:src|href)="/', html)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("js/app.js", "text/javascript"),
        ("js/pages/library.js", "text/javascript"),
        ("css/app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files(client, name: str, content_type: str) -> None:
    resp = await client.get(f"/static/{name}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith(content_type)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert await resp.read() == (WEB_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "../server/app.py",
        "..%2fserver%2fapp.py",
        "%2e%2e/%2e%2e/config.py",
        "js/../../config.py",
        "index.html",  # served at /, not as a static file
        "js/missing.js",
        ".hidden.js",
        "js/app.py",
        "css",
    ],
)
async def test_static_rejects_anything_else(client, name: str) -> None:
    resp = await client.get(f"/static/{name}")
    assert resp.status == 404
    body = await resp.json()
    assert set(body) == {"error", "detail"}


async def test_ui_under_a_prefix(aiohttp_client, config: Config) -> None:
    parent = web.Application()
    mount(parent, "/hikaze", Services.open(config))
    client = await aiohttp_client(parent)
    resp = await client.get("/hikaze", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/hikaze/"
    resp = await client.get("/hikaze/")
    assert resp.status == 200 and "static/js/app.js" in await resp.text()
    resp = await client.get("/hikaze/static/js/api.js")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/javascript")
    assert (await client.get("/hikaze/api/health")).status == 200
    assert (await client.get("/static/js/api.js")).status == 404


def _imports(source: str) -> list[str]:
    return re.findall(r'^\s*import\s[^;]*?from\s+"([^"]+)";', source, flags=re.M | re.S)


def test_every_module_import_resolves() -> None:
    for path in JS_FILES:
        for target in _imports(path.read_text()):
            assert target.startswith("./") or target.startswith("../"), (path, target)
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"


def test_every_module_is_used() -> None:
    """Every module is reached from app.js through imports (no file left over)."""
    reached: set[Path] = set()
    todo = [JS_DIR / "app.js"]
    while todo:
        path = todo.pop().resolve()
        if path not in reached:
            reached.add(path)
            todo += [path.parent / target for target in _imports(path.read_text())]
    assert {p.resolve() for p in JS_FILES} - reached == set()


def test_every_export_is_used() -> None:
    """No dead code: an exported name is imported by another module, or used in its own."""
    imported: set[tuple[Path, str]] = set()
    for path in JS_FILES:
        for names, target in re.findall(
            r'^\s*import\s*\{([^}]*)\}\s*from\s+"([^"]+)";', path.read_text(), flags=re.M
        ):
            module = (path.parent / target).resolve()
            imported |= {(module, name.split(" as ")[0].strip()) for name in names.split(",")}
    for path in JS_FILES:
        source = path.read_text()
        exports = re.findall(
            r"^export\s+(?:async\s+)?(?:function\*?|class|const|let)\s+(\w+)", source, flags=re.M
        )
        for name in exports:
            uses = len(re.findall(rf"\b{name}\b", source))
            assert (path.resolve(), name) in imported or uses > 1, f"{path.name}: {name} is unused"


def _messages() -> set[str]:
    """The English message keys, from every messages/<area>.js that i18n.js spreads."""
    i18n = (JS_DIR / "i18n.js").read_text()
    keys: set[str] = set()
    for name in re.findall(r'^import (\w+) from "\./messages/\1\.js";', i18n, flags=re.M):
        assert f"...{name}" in i18n, f"messages/{name}.js is imported but not used"
        source = (JS_DIR / "messages" / f"{name}.js").read_text()
        keys |= set(re.findall(r'^\s*"([^"]+)":', source, flags=re.M))
    assert {p.stem for p in (JS_DIR / "messages").glob("*.js")} <= {
        n for n in re.findall(r'from "\./messages/(\w+)\.js"', i18n)
    }, "a messages file i18n.js does not import"
    return keys


def test_every_string_key_is_defined() -> None:
    """All UI strings live in messages/*.js: every literal t("key") must exist there."""
    keys = _messages()
    used: dict[str, Path] = {}
    for path in JS_FILES:
        for key in re.findall(r'\bt\("([^"]+)"', path.read_text()):
            used[key] = path
        # Template keys: the literal prefix must name at least one message.
        for prefix in re.findall(r"\bt\(`([^`$]+)\$\{", path.read_text()):
            assert any(k.startswith(prefix) for k in keys), f"no message starts with {prefix}"
    missing = {k: p.name for k, p in used.items() if k not in keys}
    assert not missing, f"strings missing from messages/*.js: {missing}"
    html = (WEB_DIR / "index.html").read_text()
    for key in re.findall(r'data-i18n(?:-aria-label)?="([^"]+)"', html):
        assert key in keys, key


def test_every_message_is_used() -> None:
    """No string is left behind: each message key (less its plural ending) is named by a
    script or the page, or starts with a template key's literal prefix."""
    sources = "\n".join(p.read_text() for p in JS_FILES if "messages" not in p.parts)
    sources += (WEB_DIR / "index.html").read_text()
    prefixes = re.findall(r"\bt\(`([^`$]+)\$\{", sources)
    unused = []
    for key in _messages():
        base = re.sub(r"\.(zero|one|two|few|many|other)$", "", key)
        if f'"{base}"' not in sources and not any(base.startswith(p) for p in prefixes):
            unused.append(key)
    assert not unused, f"messages nothing shows: {sorted(unused)}"


def test_no_markup_is_built_from_strings() -> None:
    """User data (names, tags, paths) must never become HTML: DOM APIs and textContent only."""
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for path in JS_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not forbidden.search(line), f"{path.name}:{number}: {line.strip()}"


def test_fetches_use_relative_urls() -> None:
    """Absolute URLs would break the UI when mounted under a prefix (ComfyUI's /hikaze/)."""
    for path in JS_FILES:
        source = path.read_text()
        assert not re.search(r"""fetch\(\s*["'`]/""", source), path.name
        assert not re.search(r"""["'`]/api/""", source), path.name
    css = (WEB_DIR / "css" / "app.css").read_text()
    assert not re.search(r"url\(\s*['\"]?/", css)
