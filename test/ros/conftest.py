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
# The harness module sits beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def ros_context():
    """An rclpy context of the test's own, shut down after the test."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)
