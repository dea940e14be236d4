"""Shared by every test directory."""

# The conftest.py files are plugins, not test modules: under --doctest-modules pytest would also
# collect each one as a module named "conftest", and collecting two of them in one run (e.g.
# ``pytest tests/experiments tests/rl``) then failed with "import file mismatch".
collect_ignore_glob = ["conftest.py", "*/conftest.py"]
