"""The per-stage conda envs pin exactly what pyproject.toml pins."""

import re
import tomllib

import yaml
from conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)$")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    pins = {}
    for req in reqs:
        match = PIN.match(req)
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def env_pins(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    pins = {}
    for req in pip:
        match = PIN.match(req)
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def test_every_env_matches_pyproject():
    expected = pyproject_pins()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert {p.stem for p in envs} >= {"data", "train", "latency", "eval", "fit", "report"}
    for path in envs:
        pins = env_pins(path)
        assert pins, path
        for name, version in pins.items():
            assert expected.get(name) == version, f"{path.name}: {name}=={version}"


def test_every_rule_names_an_existing_env():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().exists(), (smk.name, env)
