"""Image credits: what a saved image says about the models that made it.

Pure code (Pillow aside, no database, no network): Civitai's hash keys (``keys``), ComfyUI's
sampler names in A1111's words (``samplers``), the A1111 infotext built and parsed
(``infotext``) and the PNG/WebP/JPEG metadata read and written within limits
(``containers``).
"""
