"""Label steps (kind "label"): apply what people decided in `curate browse` to the next run."""
