"""ComfyUI's entry point for Hikaze Model Manager as a custom node package.

ComfyUI imports this file from ``custom_nodes/<this folder>/``; it then registers the
loader nodes, the web extension (``WEB_DIRECTORY``) and the library's API and UI under
``/hikaze/`` on ComfyUI's own server (``hikaze_mm.comfy.plugin``). Outside ComfyUI
(pytest, ``pip install .``, a plain ``import``) it does nothing: the nodes and the plugin
are loaded only when ComfyUI's ``server`` and ``folder_paths`` modules are there.
"""

import logging
import os
import sys

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
WEB_DIRECTORY = "./hikaze_mm/web/comfy"


def _load() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:  # installed by clone: the package sits beside this file
        sys.path.insert(0, here)
    import folder_paths
    import server
    from comfy.cli_args import args

    try:
        from hikaze_mm.comfy import nodes
    except ImportError as exc:  # a dependency is missing: nothing of ours can run
        logging.getLogger("hikaze_mm.comfy").error(
            "Hikaze Model Manager cannot load: %s (run pip install -r requirements.txt)", exc
        )
        return
    NODE_CLASS_MAPPINGS.update(nodes.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    try:
        from hikaze_mm.comfy import plugin
    except ImportError as exc:
        nodes.CONTEXT.broken = (
            f"a dependency is missing ({exc}); run pip install -r requirements.txt"
        )
        logging.getLogger("hikaze_mm.comfy").error("Hikaze Model Manager: %s", nodes.CONTEXT.broken)
        return
    plugin.setup(server.PromptServer.instance, folder_paths, args)


if "folder_paths" in sys.modules and "server" in sys.modules:
    _load()
