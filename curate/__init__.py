"""curate: local-first curation of instruction and chat data."""
__version__ = "0.1.0"
