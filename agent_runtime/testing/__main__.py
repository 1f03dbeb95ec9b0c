"""`python -m agent_runtime.testing --script FILE --port N`: run the mock vLLM server."""

from agent_runtime.testing.command import mock_command

if __name__ == "__main__":
    mock_command(prog_name="python -m agent_runtime.testing")
