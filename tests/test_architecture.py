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


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "simulators",
            (
                "gymnasium",
                "torch",
                "ray",
                "driftrec.envs",
                "driftrec.agents",
                "driftrec.experiments",
            ),
        ),
        ("envs", ("torch", "ray", "driftrec.agents", "driftrec.experiments")),
        ("agents", ("ray", "driftrec.experiments", "driftrec.simulators.world")),
        ("rl", ("ray", "driftrec.experiments")),
    ],
)
def test_dependencies_point_one_way(package, forbidden):
    for path in package_files(package):
        bad = {
            m
            for m in imports(path)
            if m.split(".")[0] in forbidden
            or m in forbidden
            or any(m.startswith(f + ".") for f in forbidden)
        }
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {sorted(bad)}"


def test_optional_rl_libraries_are_imported_only_in_driftrec_rl():
    optional = ("stable_baselines3",)
    users = [
        p.relative_to(ROOT)
        for p in ROOT.rglob("*.py")
        if any(m.split(".")[0] in optional for m in imports(p))
    ]
    assert all(p.parts[0] == "rl" for p in users), users


def test_ray_is_imported_in_one_experiments_module_at_most():
    users = [p for p in ROOT.rglob("*.py") if any(m.split(".")[0] == "ray" for m in imports(p))]
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
