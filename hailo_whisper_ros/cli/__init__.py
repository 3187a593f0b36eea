"""Subcommands of `hailo-whisper`; see hailo_whisper_ros/cli.py."""
