from hikaze_mm.server.app import create_app, mount, mount_later
from hikaze_mm.server.http import SERVICES_KEY

__all__ = ["SERVICES_KEY", "create_app", "mount", "mount_later"]
