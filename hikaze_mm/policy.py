"""The conflict strategies and the limits that the API, the CLI and the worker share.

Plain constants and nothing else: this module imports nothing (not even from the
package), so the CLI can build its parser from it without loading the library, and
every layer can use it.
"""

from __future__ import annotations

# ---------------------------------------------------------------- conflict strategies
# What a promotion does when the pending model's content is already in the library.
# A client (API, ``promote ID...``, ``scan --immediate``) picks one of these, or none
# (null): then a conflict is reported and the pending model stays, marked ``conflict``.
API_STRATEGIES = ("override", "merge", "delete")
# The background worker (Stage 2, ``promote --all``) may also "skip" (leave it pending).
WORKER_STRATEGIES = ("merge", "skip", "override", "delete")
DEFAULT_WORKER_STRATEGY = "merge"
# The request field that names a strategy on every route (two routes also take an older
# name: hikaze_mm/server/requests/strategy.py).
STRATEGY_FIELD = "conf_strategy"

# ---------------------------------------------------------------- numbers and ports
MAX_INT = 2**63 - 1  # SQLite's largest integer
MAX_PORT = 65535

# ---------------------------------------------------------------- the listing
SORT_KEYS = ("name", "created_at", "last_used_at", "size_bytes")
DEFAULT_LIMIT = 100  # models per page when the client does not say
MAX_LIMIT = 500  # models per page at most

# ---------------------------------------------------------------- batches
MAX_BULK_MODELS = 5000  # models per bulk tag edit or bulk delete
MAX_TAGS_PER_EDIT = 500  # tags per operation (add, remove, set) of one edit
MAX_PROMOTE_BATCH = 1000  # pending ids per ``import_models`` request
PENDING_PAGE_LIMIT = 500  # pending models per page
MAX_CIVITAI_BATCH = 1000  # hashes per Civitai lookup request
MAX_IMAGE_SEQ = 999_999  # an image's sequence number (six digits) at most
