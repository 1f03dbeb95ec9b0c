"""`python -m agent_runtime` runs the command line."""

from agent_runtime.cli import main

if __name__ == "__main__":
    main()
