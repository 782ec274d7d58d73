from hikaze_mm.server.app import SERVICES_KEY, create_app, mount

__all__ = ["SERVICES_KEY", "create_app", "mount"]
