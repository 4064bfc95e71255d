"""Readers: one module per source format, each registered as `read.<format>`."""
