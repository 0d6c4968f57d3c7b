"""The browser test uses the same small trained shapes CNN as the UI tests."""

from __future__ import annotations

import pytest

from tests.ui.helpers import train_tiny_shapes


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    return train_tiny_shapes(tmp_path_factory.mktemp("e2e-registry"))
