"""Shared by every test directory."""

# The conftest.py files are plugins, not test modules: under --doctest-modules pytest would also
# collect each one as a module named "conftest", and collecting two of them in one run (e.g.
# ``pytest tests/experiments tests/rl``) then failed with "import file mismatch".
collect_ignore_glob = ["conftest.py", "*/conftest.py"]


import pytest  # noqa: E402


@pytest.fixture
def register():
    """``register(registry, name, builder)``: a registration for one test, undone after it
    (unless the test undid it itself)."""
    done = []

    def add(registry, name, builder):
        registry.register(name)(builder)
        done.append((registry, name))

    yield add
    for registry, name in done:
        if name in registry:
            registry.unregister(name)
