"""``hikaze-mm list`` as a real subprocess over a real library."""

from __future__ import annotations

import json
from pathlib import Path

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import run_cli
from tests.library_helpers import seed_model

config = on_each_backend()


def build_library(config: Config, extra: int = 0) -> dict[str, str]:
    svc = Services.open(config)
    try:
        shas = {
            "a": seed_model(svc, "Anime LoRA", ("style", "nsfw"), base="SDXL"),
            "b": seed_model(svc, "Real LoRA", ("Style",), base="SD1.x"),
            "c": seed_model(svc, "Base ckpt", (), type="checkpoints"),
            "m": seed_model(svc, "Missing one", ("style",), missing=True),
        }
        with svc.db.transaction():
            for i in range(extra):
                seed_model(svc, f"bulk {i:04d}", ("bulk",), size_bytes=i)
    finally:
        svc.close()
    return shas


def cli_list(config: Config, *args: str):
    url = ["--db-url", config.database_url] if config.database_url else []
    return run_cli("list", "--data-dir", str(config.data_dir), *url, *args)


def test_list_filters_json_and_text(config: Config) -> None:
    shas = build_library(config)
    proc = cli_list(config, "--json", "--tag", "STYLE", "--type", "lora")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["total"] == 2
    assert [i["sha256"] for i in out["items"]] == [shas["a"], shas["b"]]
    assert out["items"][0]["tags"][0]["name"] == "nsfw"
    proc = cli_list(config, "--json", "--tag", "style", "--exclude-tag", "nsfw", "-q", "real")
    assert [i["name"] for i in json.loads(proc.stdout)["items"]] == ["Real LoRA"]
    proc = cli_list(config, "--json", "--include-missing", "--sort", "name", "--order", "desc")
    assert [i["name"] for i in json.loads(proc.stdout)["items"]] == [
        "Real LoRA",
        "Missing one",
        "Base ckpt",
        "Anime LoRA",
    ]
    proc = cli_list(config, "--base", "SDXL")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(shas["a"][:10])
    assert "Anime LoRA" in lines[0] and "[nsfw, style]" in lines[0]
    assert "1 of 1 model\n" in proc.stderr


def test_list_pages_through_everything(config: Config) -> None:
    build_library(config, extra=520)
    proc = cli_list(config, "--json", "--tag", "bulk", "--limit", "0", "--sort", "size_bytes")
    out = json.loads(proc.stdout)
    assert out["total"] == 520 and len(out["items"]) == 520
    assert [i["size_bytes"] for i in out["items"]] == list(range(519, -1, -1))
    proc = cli_list(config, "--json", "--tag", "bulk", "--limit", "505", "--offset", "10")
    out = json.loads(proc.stdout)
    assert len(out["items"]) == 505 and out["items"][0]["name"] == "bulk 0010"


def test_list_errors_are_one_line(config: Config, tmp_path: Path) -> None:
    build_library(config)
    proc = cli_list(config, "--limit", "-1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = cli_list(config, "--query", "x" * 300)
    assert proc.returncode == 2 and "q is at most" in proc.stderr
    proc = cli_list(config, "--sort", "bogus")
    assert proc.returncode == 2
    proc = cli_list(config, "--json", "--tag", "no-such-tag")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {
        "total": 0,
        "offset": 0,
        "items": [],
    }
