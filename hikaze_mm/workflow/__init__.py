"""What ComfyUI workflows hold: our loader nodes' payloads (``payload``) and the executed
prompt's graph, walked back from an image to its sampler and models (``graph``).

Pure: no ComfyUI import, so the library reads workflows and images made elsewhere too.
"""
