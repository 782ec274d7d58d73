"""Request bodies parsed into the typed requests the services take (one module per area).

Each parser raises ``ValidationError`` (400) naming the field at fault before any
service runs, so a rejected request changes nothing.
"""
