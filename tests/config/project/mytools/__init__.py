"""Tools for the config tests: a package next to agents.yaml, not on sys.path."""
