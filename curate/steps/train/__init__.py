"""Training steps: a recipe may end by fine-tuning on the dataset it exported."""
