"""On-device Whisper speech recognition for ROS 2: Hailo NPU or CPU encoder, CPU KV-cache decoder.

``hailo_whisper_ros.core`` is the ROS-free recognizer; ``hailo_whisper_ros.ros`` holds the rclpy node shells.
"""

__version__ = "0.1.0"
