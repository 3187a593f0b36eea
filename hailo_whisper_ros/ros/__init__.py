"""rclpy node shells over hailo_whisper_ros.core: they adapt ROS topics, parameters and services to the core."""
