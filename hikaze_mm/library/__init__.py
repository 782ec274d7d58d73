"""The model library: directory scans, listings and edits."""
