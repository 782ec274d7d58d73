"""Legacy (v2) import and the promotion of pending models.

Stage 1's library function is exported here: ``from hikaze_mm.migration import
import_legacy_data`` (see ``hikaze_mm.migration.importer``).
"""

from hikaze_mm.migration.importer import ImportReport, import_legacy_data

__all__ = ["ImportReport", "import_legacy_data"]
