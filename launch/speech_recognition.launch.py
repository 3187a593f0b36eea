"""Starts speech recognition: the audio subscriber, the recognizer and the transcript publisher as three processes
(the default), or with `composed:=true` the composed speech_recognition process that holds all three; optionally
with a wav_source that plays a sound file instead of a microphone driver.

Three processes by default because the composed one's threads (executor, VAD worker, recognizer worker) share one
GIL: at 1x with partials every second on a quiet 2-core machine it cost the recognizer a fifth more compute and a
person a longer wait (README, "One process or three"; issue 14's Xeon run: twice both); under heavy load the two come
closer. The composed process saves the memory of two interpreters (about 140 MB).

The audio comes from another driver on `audio_topic` (`audio_source:=topic`, the default: a robot's own driver, and
nothing else is started), from the package's microphone node (`audio_source:=microphone`, `device:=` a part of the
device's name or its index), or from a sound file played in a loop (`audio_source:=file wav_file:=...`).

    ros2 launch hailo_whisper_ros speech_recognition.launch.py params_file:=<share>/config/speech_recognition.yaml
    ros2 launch hailo_whisper_ros speech_recognition.launch.py composed:=true
    ros2 launch hailo_whisper_ros speech_recognition.launch.py audio_source:=microphone device:=USB
    ros2 launch hailo_whisper_ros speech_recognition.launch.py audio_source:=file wav_file:=/path/speech.wav
    ros2 launch hailo_whisper_ros speech_recognition.launch.py namespace:=robot audio_topic:=mic encoder:=10s
    ros2 launch hailo_whisper_ros speech_recognition.launch.py role:=robot namespace:=robot1 audio_source:=microphone
    ros2 launch hailo_whisper_ros speech_recognition.launch.py role:=server robots:=robot1,robot2,robot3

`role:=robot` starts the audio subscriber (and the audio source) only, `role:=server` the recognizer and the
transcript publisher only, once in each of `robots` (ROS namespaces; else in `namespace`): a robot and a base
station over a network (README, "A robot and a base station"). Both load config/two_hosts_fastdds.xml (quick
resends over a lossy link; two_hosts_fastdds2.xml with Fast DDS 2: Humble, Jazzy) through FASTDDS_DEFAULT_PROFILES_FILE
unless `dds_profile` names another ('none': none).

`ros2 launch ... --show-args` lists the arguments. test/ros/test_launch_file.py launches this file for real.
"""

import importlib.metadata
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import evaluate_condition_expression
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

CONFIG = PathJoinSubstitution([FindPackageShare("hailo_whisper_ros"), "config"])
# Launch arguments that set one recognizer parameter each; left empty, the parameter files' value holds.
PARAMETER_ARGUMENTS = {
    "model_dir": ("model.dir", "Exported model directory ('' keeps the parameter files' model.dir)."),
    "encoder": ("model.encoder", "Encoder: dynamic, 10s, 30s or hef ('' keeps the parameter files' model.encoder)."),
}


# The executables of each layout, the recognizer's among them (the launch arguments' parameters are its).
LAYOUTS = {"composed": ("speech_recognition",), "separate": ("audio_subscriber", "recognizer", "transcript_publisher")}
RECOGNIZER_EXECUTABLES = ("speech_recognition", "recognizer")
AUDIO_SOURCES = ("topic", "microphone", "file")
# The nodes of each role of a robot + base station set-up; `all` is the layout's nodes on one host.
ROLES = {"robot": ("audio_subscriber",), "server": ("recognizer", "transcript_publisher")}
# The profile's XML names differ between Fast DDS 2 (Humble, Jazzy) and 3 (Kilted on), and each refuses the other's.
LOSSY_LINK_PROFILES = {2: "two_hosts_fastdds2.xml", 3: "two_hosts_fastdds.xml"}


def fast_dds_major() -> int:
    """The Fast DDS the nodes load: by the PyPI wheel installed (a venv), else by the sourced distribution."""
    for distribution, major in (("ros-fastdds", 3), ("ros-fastrtps", 2)):
        try:
            importlib.metadata.version(distribution)
            return major
        except importlib.metadata.PackageNotFoundError:
            pass
    return 2 if os.environ.get("ROS_DISTRO") in ("humble", "jazzy") else 3


def dds_environment(context) -> dict:
    """The Fast DDS profile of a robot or server role (none for `all`, where the defaults suit one host)."""
    role, profile = (LaunchConfiguration(name).perform(context) for name in ("role", "dds_profile"))
    if role == "all" or profile == "none":
        return {}
    if not profile:
        profile = PathJoinSubstitution([CONFIG, LOSSY_LINK_PROFILES[fast_dds_major()]]).perform(context)
    return {"FASTDDS_DEFAULT_PROFILES_FILE": profile}


def role_nodes(context) -> tuple[list[str], list[str]]:
    """The role's executables and the namespaces they run in (each of `robots` for a server)."""
    role = LaunchConfiguration("role").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    robots = [name.strip() for name in LaunchConfiguration("robots").perform(context).split(",") if name.strip()]
    if role == "all":
        composed = evaluate_condition_expression(context, [LaunchConfiguration("composed")])
        return list(LAYOUTS["composed" if composed else "separate"]), [namespace]
    return list(ROLES[role]), (robots if role == "server" and robots else [namespace])


def speech_recognition(context):
    """The nodes with the parameter files, then what the launch arguments set on top of them."""
    overrides = {
        parameter: value
        for argument, (parameter, _) in PARAMETER_ARGUMENTS.items()
        if (value := LaunchConfiguration(argument).perform(context))
    }
    overrides["autostart"] = evaluate_condition_expression(context, [LaunchConfiguration("autostart")])
    audio_topic = LaunchConfiguration("audio_topic")
    executables, namespaces = role_nodes(context)
    return [
        Node(
            package="hailo_whisper_ros",
            executable=executable,
            # No `name`: a node-name remap would rename all three nodes of the composed process alike.
            namespace=namespace,
            additional_env=dds_environment(context),
            parameters=[PathJoinSubstitution([CONFIG, "speech_recognition.yaml"]), LaunchConfiguration("params_file"),
                        *([overrides] if executable in RECOGNIZER_EXECUTABLES else [])],
            remappings=[("audio", audio_topic), ("audio_stamped", [audio_topic, "_stamped"])],
            ros_arguments=["--log-level", LaunchConfiguration("log_level")],
            output="screen",
        )
        for namespace in namespaces
        for executable in executables
    ]


def audio_driver(executable: str, parameters: list, context) -> Node:
    return Node(
        package="hailo_whisper_ros",
        executable=executable,
        namespace=LaunchConfiguration("namespace"),
        additional_env=dds_environment(context),
        parameters=parameters,
        remappings=[("audio", LaunchConfiguration("audio_topic"))],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
    )


def audio_source(context):
    """The node that publishes the audio: none for `topic`, the microphone (with `params_file` too, where a
    deployment sets its sample_rate, channels...) or a wav_source playing wav_file in a loop."""
    source = LaunchConfiguration("audio_source").perform(context)  # one of AUDIO_SOURCES: launch checks it
    if LaunchConfiguration("role").perform(context) == "server":  # the audio is the robots'
        return []
    if source == "microphone":
        # As a string: launch would read device:=2 as an integer, which the string parameter refuses.
        device = ParameterValue(LaunchConfiguration("device"), value_type=str)
        return [audio_driver(executable="microphone", parameters=[LaunchConfiguration("params_file"),
                                                                  {"device": device}], context=context)]
    if source == "file":
        # A list item that is a list of substitutions stays one string of a STRING_ARRAY; a bare substitution in
        # the list would be joined into one STRING, which wav_source rejects.
        return [audio_driver(executable="wav_source",
                             parameters=[{"files": [[LaunchConfiguration("wav_file")]], "loop": True}],
                             context=context)]
    return []


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([CONFIG, "hailo.yaml"]),
                description="Parameter file loaded over config/speech_recognition.yaml (every default): "
                "config/hailo.yaml for the Hailo encoder, config/speech_recognition.yaml itself for the CPU only, "
                "or a deployment's own.",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic."),
            DeclareLaunchArgument("audio_topic", default_value="audio", description="Topic the audio arrives on."),
            *(DeclareLaunchArgument(argument, default_value="", description=description)
              for argument, (_, description) in PARAMETER_ARGUMENTS.items()),
            DeclareLaunchArgument(
                "autostart", default_value="true",
                description="Load the model and start listening at once (false: wait for the lifecycle transitions).",
            ),
            DeclareLaunchArgument(
                "composed", default_value="false",
                description="One process for the three nodes (less memory) instead of three (less compute and "
                "latency: no shared GIL).",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="Logging level of the nodes."),
            DeclareLaunchArgument(
                "role", default_value="all", choices=["all", *ROLES],
                description="all: every node here; robot: the audio subscriber (and audio source) only; server: the "
                "recognizer and transcript publisher only, for each of `robots`.",
            ),
            DeclareLaunchArgument(
                "robots", default_value="",
                description="role:=server: the robots' namespaces, comma-separated (robot1,robot2): one recognizer and "
                "transcript publisher each, every robot's finals on its own topics ('' : `namespace`).",
            ),
            DeclareLaunchArgument(
                "dds_profile", default_value="",
                description="role:=robot/server: the Fast DDS XML profile the nodes load ('': the shipped "
                "config/two_hosts_fastdds.xml; none: Fast DDS's defaults).",
            ),
            DeclareLaunchArgument(
                "audio_source", default_value="topic", choices=list(AUDIO_SOURCES),
                description="Where the audio comes from: topic (another driver publishes audio_topic), microphone "
                "(the package's microphone node on `device`) or file (wav_file played in a loop).",
            ),
            DeclareLaunchArgument(
                "device", default_value="",
                description="audio_source:=microphone: a part of the input device's name, or its index ('' is the "
                "system default input).",
            ),
            DeclareLaunchArgument("wav_file", default_value="", description="audio_source:=file: the sound file."),
            OpaqueFunction(function=speech_recognition),
            OpaqueFunction(function=audio_source),
        ]
    )
