"""The shared ``main`` of the node executables: the nodes of one process on a multi-threaded executor, started
and stopped as ros2/demos' demo_nodes_py does (``with rclpy.init()``, Ctrl-C and an external shutdown end it)."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from hailo_whisper_ros.core.errors import HailoWhisperError


def run_nodes(args, node_classes) -> int:
    """Create one node of each class, spin them until shutdown, destroy them; 2 on a configuration error the user
    can fix (missing model file, invalid parameter), told in one line without a traceback."""
    program = sys.argv[0].rsplit("/", 1)[-1]
    try:
        with rclpy.init(args=args):
            nodes = []
            executor = MultiThreadedExecutor()
            try:
                for node_class in node_classes:
                    nodes.append(node_class())
                    executor.add_node(nodes[-1])
                executor.spin()
            except HailoWhisperError as error:
                print(f"{program}: error: {error}", file=sys.stderr)
                return 2
            except Exception:
                # Ctrl-C while a node is being built: rclpy's signal handler shuts the context down at once, so
                # the constructor's next rcl call fails (RCLError, "context is invalid") before the
                # KeyboardInterrupt reaches this thread. That is a normal stop, not a crash.
                if rclpy.ok():
                    raise
            finally:
                executor.shutdown()
                for node in nodes:
                    node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C (also while the model loads) or the context shut down from outside: a normal stop
    return 0
