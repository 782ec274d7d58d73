"""The A1111 infotext: built exactly as issue 20 shows it, read back by Civitai's rules
(``tests/civitai_infotext.py``) and by our own parser, which also reads A1111's and
Forge's texts and never raises."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from hikaze_mm.credits.infotext import Parameters, Resource, build_infotext, parse_infotext
from hikaze_mm.credits.keys import clean_name, hashes_key
from tests.civitai_infotext import CivitaiParseError, civitai_parse


def sha(seed: str) -> str:
    return hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()


MODEL_SHA = "a5f58eb1c3" + sha("model")[10:]
LORA_SHA = "1a2b3c4d5e" + sha("lora")[10:]
EMBED_SHA = "0123456789" + sha("embed")[10:]
ISSUE_PARAMS = Parameters(
    prompt="a prompt",
    negative_prompt="bad",
    steps=30,
    sampler="DPM++ 2M",
    schedule_type="Karras",
    cfg=7.0,
    seed=123,
    width=832,
    height=1216,
)
ISSUE_RESOURCES = [
    Resource("model", "name", MODEL_SHA),
    Resource(
        "lora",
        "my_lora",
        LORA_SHA,
        0.8,
        {"version_id": 222, "model_id": 9, "model_name": "…", "version_name": "…"},
    ),
    Resource("embedding", "easyneg", EMBED_SHA),
]


def test_the_issues_example_exactly() -> None:
    assert build_infotext(ISSUE_PARAMS, ISSUE_RESOURCES) == (
        "a prompt\n"
        "Negative prompt: bad\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, "
        "Size: 832x1216, Model hash: A5F58EB1C3, Model: name, "
        'Hashes: {"model": "A5F58EB1C3", "lora:my_lora": "1A2B3C4D5E", '
        '"embed:easyneg": "0123456789"}, '
        'Civitai resources: [{"type": "lora", "weight": 0.8, "modelVersionId": 222, '
        '"modelName": "…", "versionName": "…"}], Version: ComfyUI'
    )


def test_no_negative_prompt_no_line_and_missing_values_left_out() -> None:
    text = build_infotext(Parameters(prompt="only this", seed=2**64 - 1, cfg=6.5), [])
    assert (
        text == "only this\nSteps: 0, CFG scale: 6.5, Seed: 18446744073709551615, Version: ComfyUI"
    )
    assert build_infotext(Parameters(), []) == "Steps: 0, Version: ComfyUI"
    negative_only = build_infotext(Parameters(negative_prompt="ugly", steps=4), [])
    assert negative_only == "Negative prompt: ugly\nSteps: 4, Version: ComfyUI"
    assert civitai_parse(negative_only)["negative_prompt"] == "ugly"


def test_civitai_reads_the_issues_example() -> None:
    read = civitai_parse(build_infotext(ISSUE_PARAMS, ISSUE_RESOURCES))
    assert read["prompt"] == "a prompt" and read["negative_prompt"] == "bad"
    assert (read["steps"], read["seed"], read["size"]) == (30, 123, "832x1216")
    assert read["hashes"] == {
        "model": "A5F58EB1C3",
        "lora:my_lora": "1A2B3C4D5E",
        "embed:easyneg": "0123456789",
    }
    assert [r["modelVersionId"] for r in read["civitai_resources"]] == [222]
    details = read["details"]
    assert details["Model"] == "name" and details["Model hash"] == "A5F58EB1C3"
    assert details["Sampler"] == "DPM++ 2M" and details["Schedule type"] == "Karras"
    assert details["CFG scale"] == "7" and details["Version"] == "ComfyUI"


HOSTILE_NAMES = [
    "brace}{ name",
    "bracket] [name",
    "quote\"d 'name'",
    "comma, name, v2",
    "colon: name",
    "日本語 ✨ LoRA",
    "new\nline\ttab",
    '"}], Hashes: {"model": "0000000000"}, Civitai resources: [{',
    "x, Civitai resources: [1], y",
    "{}[]\"',:",
    "\ud800lone surrogate",
]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_hostile_names_never_break_civitais_parse(hostile: str) -> None:
    resources = [
        Resource(
            "model",
            f"ckpt {hostile}",
            sha("m" + hostile),
            civitai={"version_id": 11, "model_name": hostile, "version_name": hostile},
        ),
        Resource(
            "lora",
            hostile,
            sha("l" + hostile),
            0.65,
            {"version_id": 22, "model_name": hostile, "version_name": f"v {hostile}"},
        ),
        Resource("lora", f"second {hostile}", sha("l2" + hostile), -1.25),
        Resource("embedding", hostile, sha("e" + hostile), 1.1, {"version_id": 33}),
    ]
    params = Parameters(
        prompt=f'masterpiece, {{braces}} [brackets] "quotes"\n{hostile}\nsecond line, 日本',
        negative_prompt=f'bad hands, {hostile}\nSteps: 99, Hashes: {{"x": "y"}}',
        steps=28,
        sampler=f"custom {hostile}",
        schedule_type="Karras",
        cfg=5.5,
        seed=987654321012,
        width=1024,
        height=1536,
    )
    text = build_infotext(params, resources)
    read = civitai_parse(text)
    assert read["hashes"] == {hashes_key(r.role, r.name): r.sha256[:10].upper() for r in resources}
    assert len(read["hashes"]) == 4
    assert [(r["type"], r["modelVersionId"]) for r in read["civitai_resources"]] == [
        ("checkpoint", 11),
        ("lora", 22),
        ("embed", 33),
    ]
    assert read["civitai_resources"][1]["weight"] == 0.65
    assert "weight" not in read["civitai_resources"][0]
    assert (read["steps"], read["seed"], read["size"]) == (28, 987654321012, "1024x1536")
    details = read["details"]
    assert details["Model"] == clean_name(f"ckpt {hostile}")
    assert isinstance(details["Sampler"], str) and details["Schedule type"] == "Karras"
    assert details["Model hash"] == resources[0].sha256[:10].upper()
    civitai_prompt = "\n".join(line for line in params.prompt.split("\n") if line.strip())
    assert read["prompt"] == civitai_prompt.strip()
    written_negative = [  # a line that starts with "Steps: " gets a space
        f" {line}" if line.startswith("Steps: ") else line
        for line in params.negative_prompt.split("\n")
    ]
    civitai_negative = "\n".join(line for line in written_negative if line.strip())
    assert read["negative_prompt"] == civitai_negative.strip()
    ours = parse_infotext(text)
    assert ours["hashes"] == read["hashes"]
    assert ours["civitai_resources"] == read["civitai_resources"]
    assert (ours["steps"], ours["seed"], ours["width"], ours["height"]) == (
        28,
        987654321012,
        1024,
        1536,
    )
    assert ours["model"] == details["Model"] and ours["cfg"] == 5.5
    assert ours["prompt"] == "\n".join(line.strip() for line in params.prompt.split("\n"))
    assert ours["negative_prompt"] == "\n".join(
        line.strip() for line in params.negative_prompt.split("\n")
    )


def test_a_prompt_line_that_starts_with_steps_is_not_the_parameters_line() -> None:
    params = Parameters(prompt="Steps: 1, Seed: 5\nreal prompt", steps=20, seed=7)
    text = build_infotext(params, [])
    read = civitai_parse(text)
    assert (read["steps"], read["seed"]) == (20, 7)
    assert read["prompt"] == "Steps: 1, Seed: 5\nreal prompt"  # Civitai trims the prompt
    ours = parse_infotext(text)
    assert (ours["steps"], ours["seed"]) == (20, 7)
    assert ours["prompt"] == "Steps: 1, Seed: 5\nreal prompt"


def test_round_trip_through_our_parser() -> None:
    params = Parameters(
        prompt="line one, (weighted:1.2)\n\nline three: {x}",
        negative_prompt="neg one\nneg two",
        steps=25,
        sampler="Euler a",
        schedule_type=None,
        cfg=4.25,
        seed=0,
        width=512,
        height=768,
    )
    read = parse_infotext(build_infotext(params, ISSUE_RESOURCES))
    assert read["prompt"] == params.prompt and read["negative_prompt"] == params.negative_prompt
    assert (read["steps"], read["sampler"], read["schedule_type"]) == (25, "Euler a", None)
    assert (read["cfg"], read["seed"], read["width"], read["height"]) == (4.25, 0, 512, 768)
    assert (read["model_hash"], read["model"]) == ("A5F58EB1C3", "name")
    assert read["hashes"]["lora:my_lora"] == "1A2B3C4D5E"
    assert read["civitai_resources"][0]["modelVersionId"] == 222
    assert read["extra"] == {"Version": "ComfyUI"}
    assert read["lora_hashes"] == {} and read["ti_hashes"] == {}


def test_keys_stay_unique_and_resources_are_credited_once() -> None:
    twin_a, twin_b = sha("twin a"), sha("twin b")
    resources = [
        Resource("model", "base", sha("base"), civitai={"version_id": 1}),
        Resource("model", "refiner, xl", sha("refiner"), civitai={"version_id": 2}),
        Resource("lora", "style", twin_a, 1.0, {"version_id": 5}),
        Resource("lora", "style", twin_a, 0.5, {"version_id": 5}),  # the same LoRA again
        Resource("lora", "style]", twin_b, 0.3),  # another file, the same clean name
        Resource("lora", "style", sha("third"), 0.3),
    ]
    read = civitai_parse(build_infotext(Parameters(steps=1), resources))
    assert read["hashes"] == {
        "model": sha("base")[:10].upper(),
        "model:refiner xl": sha("refiner")[:10].upper(),
        "lora:style": twin_a[:10].upper(),
        "lora:style_2": twin_b[:10].upper(),
        "lora:style_3": sha("third")[:10].upper(),
    }
    assert [r["modelVersionId"] for r in read["civitai_resources"]] == [1, 2, 5]
    assert read["details"]["Model"] == "base"


def test_bad_resources_and_civitai_blocks_are_left_out_not_raised() -> None:
    resources = [
        Resource("vae", "a vae", sha("vae")),
        Resource("lora", "short hash", "abc"),
        Resource("lora", "not hex", "z" * 64),
        Resource("lora", "bool id", sha("b"), 1.0, {"version_id": True}),
        Resource("lora", "text id", sha("t"), 1.0, {"version_id": "12"}),
        Resource("lora", "negative id", sha("n"), 1.0, {"version_id": -3}),
        Resource("lora", "nan weight", sha("w"), float("nan"), {"version_id": 8}),
        Resource("embedding", "odd block", sha("o"), None, "not a dict"),  # type: ignore[arg-type]
    ]
    text = build_infotext(Parameters(steps=3, cfg=float("inf")), resources)
    read = civitai_parse(text)
    assert set(read["hashes"]) == {
        "lora:bool id",
        "lora:text id",
        "lora:negative id",
        "lora:nan weight",
        "embed:odd block",
    }
    assert read["civitai_resources"] == [{"type": "lora", "modelVersionId": 8}]
    assert "CFG scale" not in text and "Model hash" not in text


A1111_TEXT = (
    "masterpiece, best quality, 1girl,\n"
    "(long hair:1.2), <lora:add_detail:0.6>\n"
    "Negative prompt: EasyNegative, (worst quality:1.4),\n"
    "lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, "
    "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, "
    'Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+, Lora hashes: "add_detail: 7c6bad76eb54, '
    'more_details: 0123456789ab", '
    'TI hashes: "EasyNegative: c74b4e810b03, bad-hands-5: aa7651be154c", '
    'Emphasis: "Original", ADetailer prompt: "a face, smiling", Version: v1.10.1'
)


def test_reads_an_a1111_text() -> None:
    read = parse_infotext(A1111_TEXT)
    assert (
        read["prompt"]
        == "masterpiece, best quality, 1girl,\n(long hair:1.2), <lora:add_detail:0.6>"
    )
    assert read["negative_prompt"] == "EasyNegative, (worst quality:1.4),\nlowres"
    assert (read["steps"], read["sampler"], read["schedule_type"]) == (28, "DPM++ 2M", "Karras")
    assert (read["cfg"], read["seed"], read["width"], read["height"]) == (7.0, 1234567890, 512, 768)
    assert (read["model_hash"], read["model"]) == ("6ce0161689", "v1-5-pruned-emaonly")
    assert read["lora_hashes"] == {"add_detail": "7c6bad76eb54", "more_details": "0123456789ab"}
    assert read["ti_hashes"] == {"EasyNegative": "c74b4e810b03", "bad-hands-5": "aa7651be154c"}
    assert read["extra"]["ADetailer prompt"] == "a face, smiling"
    assert read["extra"]["Emphasis"] == "Original"
    assert read["extra"]["Hires upscaler"] == "R-ESRGAN 4x+"
    assert read["extra"]["Version"] == "v1.10.1"
    assert read["hashes"] == {} and read["civitai_resources"] == []


def test_reads_a_forge_text_with_hashes_no_negative_and_crlf() -> None:
    text = (
        "a photo of a cat\r\non a sofa\r\n"
        "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 3.5, Seed: 42, "
        "Size: 896x1152, Model hash: 0a1b2c3d4e, Model: flux1-dev-bnb-nf4-v2, "
        'Hashes: {"vae": "AB12CD34EF", "model": "0A1B2C3D4E", "lora:cat, style": "5E6F7A8B9C"}, '
        'Civitai resources: [{"type": "checkpoint", "modelVersionId": 691639}], '
        "Distilled CFG Scale: 3.5, Module 1: ae, Version: f2.0.1v1.10.1-previous-313-g8a042934"
    )
    read = parse_infotext(text)
    assert read["prompt"] == "a photo of a cat\non a sofa" and read["negative_prompt"] == ""
    assert read["hashes"] == {
        "vae": "AB12CD34EF",
        "model": "0A1B2C3D4E",
        "lora:cat, style": "5E6F7A8B9C",
    }
    assert read["civitai_resources"] == [{"type": "checkpoint", "modelVersionId": 691639}]
    assert read["extra"]["Distilled CFG Scale"] == "3.5" and read["extra"]["Module 1"] == "ae"
    assert read["schedule_type"] == "Automatic" and read["seed"] == 42


def test_without_a_steps_line_the_last_line_counts_when_it_has_three_parameters() -> None:
    read = parse_infotext("prompt\nSampler: Euler, Seed: 9, Size: 64x64")
    assert (read["prompt"], read["sampler"], read["seed"], read["width"]) == (
        "prompt",
        "Euler",
        9,
        64,
    )
    just_text = parse_infotext("a prompt: with a colon\nNegative prompt: nothing")
    assert just_text["prompt"] == "a prompt: with a colon"
    assert just_text["negative_prompt"] == "nothing" and just_text["steps"] is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x00",
        "Steps:",
        "Steps: ,,,,",
        "Steps: x, Seed: 1.5, CFG scale: nan, Size: 99999999x1, Sampler: ",
        'Steps: 1, Hashes: {"a": ',
        'Steps: 1, Hashes: {"a": 1, "b": {"c": 2}}, Civitai resources: {"not": "a list"}',
        "Steps: 1, Civitai resources: [" + "[" * 100_000,
        "Steps: 1, Hashes: " + "{" * 50_000,
        'Steps: 1, Model: "unterminated, Seed: 5',
        "Steps: 1, Seed: " + "9" * 5000,
        "Steps: 1, CFG scale: 1e999, Seed: -" + "1" * 25,
        'Steps: 1, Lora hashes: "no hash here, :lonely, name:", TI hashes: 5',
        'Steps: 1, Civitai resources: [1, "x", {"type": "lora"}], Hashes: [1]',
        'Steps: 1, Hashes: NaN, Extra: [NaN], Other: {"x": Infinity}',
        "Negative prompt:",
        "Negative prompt:\nNegative prompt:\nSteps: 2",
        ': : : , , ,\n,:,:\n"""',
    ],
)
def test_odd_texts_never_raise(text: str) -> None:
    read = parse_infotext(text)
    assert set(read) == {
        "prompt",
        "negative_prompt",
        "steps",
        "sampler",
        "schedule_type",
        "cfg",
        "seed",
        "width",
        "height",
        "model_hash",
        "model",
        "hashes",
        "civitai_resources",
        "lora_hashes",
        "ti_hashes",
        "extra",
    }
    assert isinstance(read["hashes"], dict) and isinstance(read["civitai_resources"], list)
    assert all(isinstance(item, dict) for item in read["civitai_resources"])
    assert all(isinstance(v, str) for v in read["lora_hashes"].values())
    json.dumps(read, allow_nan=False)  # what inspect answers is valid JSON


def test_odd_values_read_as_none() -> None:
    read = parse_infotext("Steps: x, Seed: 1.5, CFG scale: nan, Size: 99999999x1, Sampler: ")
    assert (read["steps"], read["seed"], read["cfg"], read["width"], read["sampler"]) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert parse_infotext("Steps: 1, Seed: " + "9" * 30)["seed"] is None
    assert parse_infotext("Steps: 1, Seed: -5")["seed"] == -5


def test_random_texts_never_raise() -> None:
    alphabet = [
        *'Steps: Negative prompt:,:"{}[]\\\n\r\x00 aZ9.-日\ud800',
        "Steps: ",
        ", Hashes: {",
        ", Civitai resources: [",
        'Lora hashes: "',
        "NaN",
        "1e9",
    ]
    rng = random.Random(20)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        read = parse_infotext(text)
        json.dumps(read, allow_nan=False)


def test_civitai_parser_fails_where_civitai_would() -> None:
    """The test parser is strict: a text it accepts is one Civitai reads."""
    with pytest.raises(CivitaiParseError):
        civitai_parse("no parameters here")
    with pytest.raises((CivitaiParseError, json.JSONDecodeError)):
        civitai_parse('x\nSteps: 1, Hashes: {"a": {"nested": "b"}}')
    with pytest.raises(json.JSONDecodeError):
        civitai_parse('Steps: 1, Hashes: {"a": "b}"}')
    with pytest.raises((CivitaiParseError, json.JSONDecodeError)):
        civitai_parse('Steps: 1, Civitai resources: [{"modelName": "a]b"}]')
    quoted = civitai_parse('Steps: 1, Model: "a, b: c"')
    assert quoted["details"]["Model"] == {"b": "c"}  # why we never quote a name
