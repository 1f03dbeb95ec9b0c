"""Example tools referenced by agents.yaml as "tools.<module>:<function>"."""
