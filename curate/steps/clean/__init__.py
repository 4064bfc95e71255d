"""Clean steps (kind "clean"): transforms that change turn text but never remove records."""
