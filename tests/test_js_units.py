"""The pure JS modules of the web UI under ``node --test`` (tests/js/), and their Python
twins on the same case tables (tests/cases/):

- payload.json: web/comfy/payload.js and hikaze_mm/workflow/payload.py read the same payloads;
- listing.json: the query web/comfy/shared/listing.js builds is what
  hikaze_mm/library/queries.py parses into the expected ModelQuery;
- lora.json and rate.json: JS only (nothing in Python writes a LoRA tag or estimates a rate).

Without Node the JS half skips with one line, except in CI (CI=true), where it fails:
.ci/run installs npm, which brings node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hikaze_mm.library.queries import query_from_params
from hikaze_mm.workflow.payload import PayloadError, parse_loras, parse_model

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "cases"
JS_TESTS = sorted((REPO / "tests" / "js").glob("*.test.mjs"))


def table(name: str) -> Any:
    return json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))


def node() -> str:
    found = shutil.which("node")
    if found:
        return found
    message = "node is missing: install Node.js (apt-get install npm brings it) to run tests/js/"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_the_js_units_pass() -> None:
    assert len(JS_TESTS) >= 4
    done = subprocess.run(
        [node(), "--test", "--test-reporter=tap", *map(str, JS_TESTS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    # Every case of every table ran (one test each, plus a few more per file).
    tables = table("payload"), table("listing"), table("lora"), table("rate")
    count = len(tables[0]["single"]) + len(tables[0]["loras"]) + len(tables[1]["cases"])
    count += len(tables[2]["cases"]) + len(tables[3]["sample_of"]) + len(tables[3]["estimates"])
    passed = int(done.stdout.split("# pass ")[1].split()[0])
    assert passed > count


# ---------------------------------------------------------------- payload.py
def payload_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def for_python(case: dict[str, Any]) -> dict[str, Any]:
    return {**case, **case.get("py", {})}


SINGLE = [for_python(c) for c in table("payload")["single"]]
LORAS = [for_python(c) for c in table("payload")["loras"]]


@pytest.mark.parametrize("case", SINGLE, ids=[c["name"] for c in SINGLE])
def test_the_python_parser_reads_the_single_cases(case: dict[str, Any]) -> None:
    text = payload_text(case["payload"])
    if "ref" in case:
        ref = parse_model(text)
        assert {"sha256": ref.sha256, "name": ref.name, "path": ref.path} == case["ref"]
        return
    with pytest.raises(PayloadError) as caught:
        parse_model(text)
    assert ("no model chosen" if case.get("empty") else case["error"]) in str(caught.value)


@pytest.mark.parametrize("case", LORAS, ids=[c["name"] for c in LORAS])
def test_the_python_parser_reads_the_lora_cases(case: dict[str, Any]) -> None:
    text = payload_text(case["payload"])
    if "loras" in case:
        entries = [
            {
                "sha256": e.model.sha256,
                "name": e.model.name,
                "path": e.model.path,
                "strength_model": e.strength_model,
                "strength_clip": e.strength_clip,
                "enabled": e.enabled,
            }
            for e in parse_loras(text)
        ]
        assert entries == case["loras"]
        return
    with pytest.raises(PayloadError) as caught:
        parse_loras(text)
    assert ("no model chosen" if case.get("empty") else case["error"]) in str(caught.value)


# ---------------------------------------------------------------- queries.py
LISTING = table("listing")["cases"]


@pytest.mark.parametrize("case", LISTING, ids=[c["name"] for c in LISTING])
def test_the_python_parser_reads_the_built_queries(case: dict[str, Any]) -> None:
    multi = parse_qs(urlsplit(case["query"]).query, keep_blank_values=True)
    params = {key: values[-1] for key, values in multi.items()}
    query = query_from_params(params, multi)
    for field, expected in case["parsed"].items():
        value = getattr(query, field)
        assert (list(value) if isinstance(value, tuple) else value) == expected, field
