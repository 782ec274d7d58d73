"""Civitai's resource keys: AutoV2, the ``Hashes`` keys and the cleaned names."""

from __future__ import annotations

import json
import re

import pytest

from hikaze_mm.credits.keys import (
    FALLBACK_NAME,
    MAX_NAME_CHARS,
    ROLES,
    autov2,
    clean_name,
    clean_text,
    hashes_key,
)

SHA = "a5f58eb1c3" + "0123456789abcdef" * 3 + "012345"


def test_autov2_is_the_first_ten_hex_digits_upper_case() -> None:
    assert len(SHA) == 64
    assert autov2(SHA) == "A5F58EB1C3"
    assert autov2(SHA.upper()) == "A5F58EB1C3"


@pytest.mark.parametrize("bad", ["", "abc", "zzzzzzzzzz" + "0" * 54, " " * 64])
def test_autov2_refuses_what_is_not_a_hash(bad: str) -> None:
    with pytest.raises(ValueError):
        autov2(bad)


def test_roles_and_their_keys() -> None:
    assert ROLES == ("model", "lora", "embedding")
    assert hashes_key("model", "Anything, v3 [fp16]") == "model"
    assert hashes_key("lora", "my_lora") == "lora:my_lora"
    assert hashes_key("embedding", "easyneg") == "embed:easyneg"
    with pytest.raises(ValueError, match="role"):
        hashes_key("vae", "x")


@pytest.mark.parametrize(
    "name,expected",
    [
        ("plain_name-v2.1", "plain_name-v2.1"),
        ("a{b}[c]\"d'e,f:g", "abcdefg"),
        ("  spaced \t out\nname  ", "spaced out name"),
        ("line\u2028sep\x00nul\x7fdel", "line sep nul del"),
        ("日本語 ✨ LoRA", "日本語 ✨ LoRA"),
        ("emoji 👩\u200d🎨", "emoji 👩\u200d🎨"),
        ("{}[]\"',:", FALLBACK_NAME),
        ("", FALLBACK_NAME),
        ("\n\t ", FALLBACK_NAME),
    ],
)
def test_clean_names(name: str, expected: str) -> None:
    assert clean_name(name) == expected


def test_a_clean_name_is_short_and_never_breaks_a_key_or_json() -> None:
    hostile = ('x]}", "model": "0000000000"}, {' * 40) + "\ud800end"
    name = clean_name(hostile)
    assert len(name) <= MAX_NAME_CHARS
    assert not set(name) & set("{}[]\"',:")
    key = hashes_key("lora", hostile)
    obj = json.dumps({key: "1A2B3C4D5E"}, ensure_ascii=False)
    # Civitai's pattern: the object ends at the first "}" and the array at the first "]".
    match = re.search(r"\{[^}]*\}", obj)
    assert match and json.loads(match.group(0)) == {key: "1A2B3C4D5E"}
    assert "\ud800" not in name


def test_clean_text_may_be_empty_but_clean_name_never_is() -> None:
    assert clean_text("[]") == ""
    assert clean_name("[]") == FALLBACK_NAME
