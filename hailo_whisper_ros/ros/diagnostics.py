"""Each node's status on /diagnostics (diagnostic_msgs/DiagnosticArray), about once a second.

A node supplies a function returning (level, message, values); this module turns it into a DiagnosticStatus named
after the node, like diagnostic_updater does for C++ and Python nodes on a full ROS install.
"""

from __future__ import annotations

from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR

StatusFunction = Callable[[], tuple[bytes, str, dict[str, Any]]]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class DiagnosticsPublisher:
    """Publishes one DiagnosticStatus for its node on /diagnostics every `period_s`."""

    def __init__(self, node: Node, status: StatusFunction, period_s: float = 1.0):
        self.node = node
        self.status = status
        # Absolute: diagnostics aggregate per robot, whatever namespace the node runs in.
        self.publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        level, message, values = self.status()
        status = DiagnosticStatus(
            level=level,
            name=f"{self.node.get_fully_qualified_name().lstrip('/')}",
            message=message,
            hardware_id="hailo_whisper_ros",
            values=[KeyValue(key=key, value=format_value(value)) for key, value in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)
