"""Generators: steps that write conversation text with a model (answers, new instructions)."""
