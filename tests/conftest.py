"""Shared fixtures: repository paths and the embedded default config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.fixture
def config(default_config) -> dict:
    """A private copy of the default config that a test may change."""
    return copy.deepcopy(default_config)
