"""The folder tree of the model roots, with how many present models lie under each folder.

``folder_tree`` is pure: it takes the roots and the models' paths, so the listing's
``folder`` filter (a range of the path index) and this tree agree on what "under" means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any


def _node(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "path": path, "count": 0, "children": {}}


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    children = sorted(node["children"].values(), key=lambda c: c["name"].casefold())
    return {**node, "children": [_finish(child) for child in children]}


def folder_tree(roots: Sequence[PurePath], paths: Iterable[str]) -> list[dict[str, Any]]:
    """``[{name, path, count, children: [...]}]``, one per root (in the roots' order): each
    folder below a root that holds a model, at any depth, with the number of models under
    it. A path under several roots (one inside another) counts in the deepest only."""
    tops = [_node(str(root), str(root)) for root in roots]
    # Deepest root first, so a model goes to the most specific root holding it.
    order = sorted(range(len(roots)), key=lambda i: len(roots[i].parts), reverse=True)
    for text in paths:
        path = PurePath(text)
        for i in order:
            root = roots[i]
            if root not in path.parents:
                continue
            node = tops[i]
            node["count"] += 1
            current = root
            for part in path.relative_to(root).parts[:-1]:
                current = current / part
                child = node["children"].get(part)
                if child is None:
                    child = node["children"][part] = _node(part, str(current))
                child["count"] += 1
                node = child
            break
    return [_finish(top) for top in tops]
