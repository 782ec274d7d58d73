from hikaze_mm.meta import merge_meta_json, parse_meta, strip_image_keys
from hikaze_mm.model_types import canonical_type


def test_merge_rules() -> None:
    existing = {
        "a": 1,
        "empty": "",
        "none": None,
        "lst": [1, {"x": 1}],
        "nested": {"keep": "e", "fill": ""},
    }
    incoming = {
        "a": 2,
        "empty": "filled",
        "none": 5,
        "lst": [{"x": 1}, 2, 2],
        "nested": {"keep": "i", "fill": "i", "new": 1},
        "added": [1],
    }
    merged = merge_meta_json(existing, incoming)
    assert merged == {
        "a": 1,
        "empty": "filled",
        "none": 5,
        "lst": [1, {"x": 1}, 2],
        "nested": {"keep": "e", "fill": "i", "new": 1},
        "added": [1],
    }
    assert existing["lst"] == [1, {"x": 1}]  # inputs untouched
    assert merge_meta_json({"a": [1]}, {"a": "text"}) == {"a": [1]}
    assert merge_meta_json({"a": {}}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_parse_and_strip() -> None:
    assert parse_meta(None) == {} and parse_meta("[1]") == {} and parse_meta("{bad") == {}
    assert strip_image_keys({"images": [1], "image": "x", "preview": "y", "d": 1}) == {"d": 1}


def test_canonical_types() -> None:
    for legacy, key in [
        ("checkpoint", "checkpoints"),
        ("Stable-diffusion", "checkpoints"),
        ("lora", "loras"),
        ("Lora", "loras"),
        ("embedding", "embeddings"),
        ("upscale", "upscale_models"),
        ("vae", "vae"),
        ("", "other"),
        (None, "other"),
        ("ultralytics", "ultralytics"),
        ("MyStuff", "mystuff"),
    ]:
        assert canonical_type(legacy) == key
