"""Scorers: steps that measure the whole set (diversity, maps) and decide nothing."""
