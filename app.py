"""Streamlit entry point: ``streamlit run app.py -- RUN_DIR [--labels PATH]`` (or ``curate browse RUN_DIR``)."""

import sys

from curate.browse.app import main

main(sys.argv[1:])
