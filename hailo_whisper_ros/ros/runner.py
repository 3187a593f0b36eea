"""Runs one or more nodes in this process on a multi-threaded executor, the shared `main` of the executables."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from hailo_whisper_ros.core import HailoWhisperError


def create_node(node_class):
    """A node of ``node_class``. If its constructor raises HailoWhisperError after rclpy's Node part was set up, the
    half-built node is destroyed as a plain Node here: the context tracks it and would otherwise call the class's
    destroy_node at shutdown, which fails on the attributes the constructor never set."""
    node = node_class.__new__(node_class)
    try:
        node.__init__()
    except HailoWhisperError:
        Node.destroy_node(node)
        raise
    return node


def run_nodes(args, node_classes) -> int:
    rclpy.init(args=args)
    nodes = []
    try:
        for node_class in node_classes:
            nodes.append(create_node(node_class))
    except (HailoWhisperError, KeyboardInterrupt) as error:
        # A configuration the user can fix (missing model file, invalid parameter): one line, no traceback.
        # Ctrl-C while the model loads is a normal stop.
        if isinstance(error, HailoWhisperError):
            print(f"{sys.argv[0].rsplit('/', 1)[-1]}: error: {error}", file=sys.stderr)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        return 2 if isinstance(error, HailoWhisperError) else 0
    executor = MultiThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
