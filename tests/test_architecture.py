"""The layering of DESIGN.md section 1 and the seeding rule, checked on the source."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "driftrec"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


LEAVES = ("validation.py", "registry.py", "slates.py")
"""Modules below every layer (checks, the registry, slate semantics): they import no driftrec."""

RULES = [
    # package, forbidden imports (DESIGN 1: simulators <- envs <- agents <- experiments).
    (
        "simulators",
        ("gymnasium", "torch", "ray", "driftrec.envs", "driftrec.agents", "driftrec.rl"),
    ),
    ("envs", ("torch", "ray", "driftrec.agents", "driftrec.experiments", "driftrec.rl")),
    (
        "agents",
        (
            "ray",
            "driftrec.envs",
            "driftrec.simulators",
            "driftrec.experiments",
            "driftrec.rl",
        ),
    ),
    ("rl", ("ray", "driftrec.experiments")),
]


OPTIONAL_RL = ("stable_baselines3", "ray.rllib", "ray.tune.registry")
"""Optional RL libraries (RLlib with the env registry it reads): imported in driftrec.rl only.
Ray itself (``ray.init``, tasks) stays in one experiments module."""


def is_optional_rl(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in OPTIONAL_RL)


def forbidden_imports(path: Path, forbidden: tuple[str, ...]) -> set[str]:
    return {
        m
        for m in imports(path)
        if m.split(".")[0] in forbidden
        or m in forbidden
        or any(m.startswith(f + ".") for f in forbidden)
    }


@pytest.mark.parametrize(("package", "forbidden"), RULES)
def test_dependencies_point_one_way(package, forbidden):
    forbidden = (*forbidden, "driftrec.experiments")
    for path in package_files(package):
        bad = forbidden_imports(path, forbidden)
        if package == "rl":
            bad = {m for m in bad if not is_optional_rl(m)}
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {sorted(bad)}"


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_nothing_of_driftrec(leaf):
    assert not forbidden_imports(ROOT / leaf, ("driftrec",))


def test_every_package_has_a_rule():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"experiments"} == {package for package, _ in RULES}
    modules = {p.name for p in ROOT.glob("*.py")} - {"__init__.py"}
    assert modules == set(LEAVES)


def test_no_module_is_longer_than_450_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long, long


def test_optional_rl_libraries_are_imported_only_in_driftrec_rl():
    users = [
        p.relative_to(ROOT) for p in ROOT.rglob("*.py") if any(map(is_optional_rl, imports(p)))
    ]
    assert all(p.parts[0] == "rl" for p in users), users


def test_ray_is_imported_in_one_experiments_module_at_most():
    users = [
        p
        for p in ROOT.rglob("*.py")
        if any(m.split(".")[0] == "ray" and not is_optional_rl(m) for m in imports(p))
    ]
    assert len(users) <= 1, users


GLOBAL_RNG = (
    "np.random.rand(",
    "np.random.randn(",
    "np.random.randint(",
    "np.random.seed(",
    "np.random.choice(",
    "np.random.normal(",
    "np.random.uniform(",
    "np.random.shuffle(",
    "np.random.permutation(",
    "random.random(",
    "random.seed(",
    "torch.manual_seed(",
)


def test_no_global_random_state():
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        used = [call for call in GLOBAL_RNG if call in text]
        assert not used, f"{path.relative_to(ROOT.parent)} uses global RNG calls {used}"
