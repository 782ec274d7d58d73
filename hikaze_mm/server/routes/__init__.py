"""HTTP routes, one module per area. Each module exposes ``routes`` (a RouteTableDef)."""
