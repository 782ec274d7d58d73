"""Legacy (v2) import and the promotion of pending models."""
