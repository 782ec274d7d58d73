from hikaze_mm.database.manager import (
    DatabaseManager,
    SchemaTooNewError,
    normalize_color,
    normalize_sha256,
    normalize_tag_name,
    now_ms,
)
from hikaze_mm.database.schema import LATEST_REVISION

__all__ = [
    "LATEST_REVISION",
    "DatabaseManager",
    "SchemaTooNewError",
    "normalize_color",
    "normalize_sha256",
    "normalize_tag_name",
    "now_ms",
]
