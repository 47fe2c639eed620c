"""Fixtures the agent tests share."""

from pathlib import Path

import pytest

from aiops.cluster.errors import ClusterError
from aiops.cluster.tools import tools_bin_dir


@pytest.fixture(scope="module")
def kubectl() -> Path:
    """The kubectl the project builds; the test is skipped when it is not built."""
    try:
        return tools_bin_dir(build=False, required=("kubectl",)) / "kubectl"
    except ClusterError as err:
        pytest.skip(f"kubectl is not built: {err}")
