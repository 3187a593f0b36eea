"""ROS 2 tests run on real DDS confined to this machine, in a domain of their own per test run."""

import os
import random
import sys
from pathlib import Path

import pytest

# Set before any rclpy.init() in this process and inherited by every node process a test starts.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.pop("ROS_STATIC_PEERS", None)

BIN_DIR = Path(sys.executable).parent
SPEECH_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech_dev"


@pytest.fixture
def ros_context():
    """An rclpy context of the test's own, shut down after the test."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture
def executable():
    """Path of an installed executable of this package (`make setup` puts them beside the venv's python)."""

    def find(name: str) -> str:
        path = BIN_DIR / name
        assert path.exists(), f"{path} missing: run `make setup`"
        return str(path)

    return find


@pytest.fixture(scope="session")
def dev_clip_paths() -> list[str]:
    """The real speech clips of the shared dev set, in ALL.tsv order."""
    listing = SPEECH_DEV / "ALL.tsv"
    assert listing.is_file(), f"{listing} missing: the shared dev set must sit beside the repo"
    return [str(SPEECH_DEV / line.split("\t")[0]) for line in listing.read_text().splitlines()[1:] if line.strip()]
