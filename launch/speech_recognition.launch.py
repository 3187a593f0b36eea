"""Starts the composed speech recognition node (audio subscriber + recognizer + transcript publisher in one
process), optionally with a wav_source that plays a sound file instead of a microphone driver.

    ros2 launch hailo_whisper_ros speech_recognition.launch.py params_file:=<share>/config/speech_recognition.yaml
    ros2 launch hailo_whisper_ros speech_recognition.launch.py use_wav_source:=true wav_file:=/path/speech.wav
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare("hailo_whisper_ros"), "config"])
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    audio_topic = LaunchConfiguration("audio_topic")
    log_level = LaunchConfiguration("log_level")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([config, "hailo.yaml"]),
                description="Parameter file loaded over config/speech_recognition.yaml (every default): "
                "config/hailo.yaml for the Hailo encoder, config/speech_recognition.yaml itself for the CPU only, "
                "or a deployment's own.",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic."),
            DeclareLaunchArgument("audio_topic", default_value="audio", description="Topic the audio arrives on."),
            DeclareLaunchArgument(
                "use_wav_source", default_value="false", description="Publish wav_file instead of a microphone."
            ),
            DeclareLaunchArgument("wav_file", default_value="", description="Sound file for use_wav_source."),
            DeclareLaunchArgument("log_level", default_value="info", description="Logging level of the nodes."),
            Node(
                package="hailo_whisper_ros",
                executable="speech_recognition",
                # No `name`: a node-name remap would rename all three nodes of the process alike.
                namespace=namespace,
                parameters=[PathJoinSubstitution([config, "speech_recognition.yaml"]), params_file],
                remappings=[("audio", audio_topic), ("audio_stamped", [audio_topic, "_stamped"])],
                arguments=["--ros-args", "--log-level", log_level],
                output="screen",
            ),
            Node(
                package="hailo_whisper_ros",
                executable="wav_source",
                name="wav_source",
                namespace=namespace,
                parameters=[{"files": [LaunchConfiguration("wav_file")], "loop": True}],
                remappings=[("audio", audio_topic)],
                arguments=["--ros-args", "--log-level", log_level],
                condition=IfCondition(LaunchConfiguration("use_wav_source")),
                output="screen",
            ),
        ]
    )
