"""Deterministic tools for the end-to-end tests (see tests/project/agents.yaml)."""
