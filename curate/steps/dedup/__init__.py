"""Deduplication at three levels (exact hash, MinHash-LSH, semantic) with one shared keep policy."""
