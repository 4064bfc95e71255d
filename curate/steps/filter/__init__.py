"""Filter steps (kind "filter"): measure each conversation, then reject it with a stable reason."""
