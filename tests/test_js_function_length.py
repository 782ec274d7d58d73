"""No function of the web UI (hikaze_mm/web/**/*.js) is over 150 lines.

A small scanner: it finds each ``function`` declaration or expression, method-free arrow
function with a block body (``=> {``) and class method, and matches its braces, skipping
strings, template literals (with their ``${...}``), regular expressions and comments.
A function's length counts its lines from its header to its closing brace; a nested
function counts within its parent too, so splitting a closure into inner functions does
not shorten it: the parts must leave it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hikaze_mm.server.routes.web_ui import WEB_DIR

MAX_LINES = 150
JS_FILES = sorted(WEB_DIR.rglob("*.js"))
PARAMS = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"  # (...), nested twice: ({ f = () => {} })
HEADER = re.compile(
    rf"\bfunction\b\s*\*?\s*[\w$]*\s*{PARAMS}\s*\{{"  # function f(...) {, function (...) {
    rf"|(?:{PARAMS}|[\w$]+)\s*=>\s*\{{"  # (a, b) => {, a => {
    rf"|^\s*(?:static\s+|async\s+|get\s+|set\s+)*[\w$]+\s*{PARAMS}\s*\{{",  # class methods
    re.M,
)
KEYWORDS = {"if", "for", "while", "switch", "catch", "with", "return", "function"}
REGEX_BEFORE = set("(,=:[!&|?{};+-*%<>~^") | {""}


def code_mask(source: str) -> str:
    """The source with strings, templates, regexes and comments blanked (newlines kept)."""
    out = list(source)
    i, n = 0, len(source)
    stack: list[int] = []  # brace depth at each open template's ${

    def blank(start: int, end: int) -> None:
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    def last_code_char(k: int) -> str:
        k -= 1
        while k >= 0 and out[k] in " \t\n":
            k -= 1
        return out[k] if k >= 0 else ""

    depth = 0
    while i < n:
        c = source[i]
        if c == "/" and source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif c == "/" and source.startswith("/*", i):
            end = source.find("*/", i + 2) + 2
            blank(i, end)
            i = end
        elif c in "'\"":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "`" or (c == "}" and stack and stack[-1] == depth):
            if c == "}":
                stack.pop()
            j = i + 1
            while j < n and source[j] != "`" and not source.startswith("${", j):
                j += 2 if source[j] == "\\" else 1
            blank(i + 1, j)
            if source.startswith("${", j):
                stack.append(depth)
                i = j + 2
            else:
                i = j + 1
        elif c == "/" and last_code_char(i) in REGEX_BEFORE:
            j, in_class = i + 1, False
            while j < n and (source[j] != "/" or in_class) and source[j] != "\n":
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            blank(i + 1, j)
            i = j + 1
        else:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
    return "".join(out)


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[int, int]]:
    """(first line, lines) of each function over ``limit`` lines."""
    code = code_mask(source)
    found = []
    for match in HEADER.finditer(code):
        name = re.match(r"\s*([\w$]+)", match.group(0))
        if name and name.group(1) in KEYWORDS - {"function"}:
            continue  # if (...) {, for (...) {: not a method
        depth, k = 0, match.end() - 1
        while k < len(code):
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        header = match.group(0)
        first = code.count("\n", 0, match.start() + len(header) - len(header.lstrip()))
        lines = code.count("\n", match.start(), k) + 1
        if lines > limit:
            found.append((first + 1, lines))
    return found


def test_the_scanner_finds_long_functions() -> None:
    body = "\n".join(f"  const x{i} = `${{a}}}}{i}`; // }} {{" for i in range(160))
    headers = ("function big(a) {", "const big = async (a) => {", "export async function big() {")
    for header in headers:
        assert long_functions(f"{header}\n{body}\n}}\n") == [(1, 162)]
    defaults = "export function big({ onSaved = () => {}, n = (1 + 2) } = {}) {\n"
    assert long_functions(defaults + body + "\n}\n") == [(1, 162)]
    # A class method, a regex with braces, and a function of exactly the limit.
    method = "class A {\n  render(x) {\n" + "    y = /[{]/.test(x);\n" * 150 + "  }\n}\n"
    assert long_functions(method) == [(2, 152)]
    assert long_functions("function ok() {\n" + "  f();\n" * 148 + "}\n") == []
    assert long_functions("if (a) {\n" + "  f();\n" * 200 + "}\n") == []


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.relative_to(WEB_DIR).as_posix())
def test_no_function_is_over_150_lines(path: Path) -> None:
    assert long_functions(path.read_text()) == [], path.relative_to(WEB_DIR).as_posix()
