from pathlib import Path

import pytest

REFERENCE_DATA = Path(__file__).parent / "reference_data"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """Folder of the paper's reference outputs (R dumps and R-computed curves, MIT licence)."""
    return REFERENCE_DATA
