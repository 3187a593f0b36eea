from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

package_name = "hailo_whisper_ros"
requirements = [
    line.split("#")[0].strip()
    for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines()
    if line.split("#")[0].strip()
]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    # The shipped speech clips (demo, default folder of the commands, core tests) and the Silero VAD model with its
    # licence, wherever the package installs.
    package_data={package_name: ["speech_samples/*.*", "speech_samples/*/*", "core/silero_vad/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=requirements,
    zip_safe=True,
    maintainer="hailo_whisper_ros developers",
    maintainer_email="hailo-whisper-ros@users.noreply.github.com",
    description="On-device Whisper speech recognition for ROS 2 with a Hailo NPU or CPU encoder.",
    license="MIT",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "hailo-whisper = hailo_whisper_ros.cli.main:main",
            "wav_source = hailo_whisper_ros.ros.nodes.wav_source:main",
            "microphone = hailo_whisper_ros.ros.nodes.microphone:main",
            "audio_subscriber = hailo_whisper_ros.ros.nodes.audio_subscriber:main",
            "recognizer = hailo_whisper_ros.ros.nodes.recognizer:main",
            "transcript_publisher = hailo_whisper_ros.ros.nodes.transcript_publisher:main",
            "speech_recognition = hailo_whisper_ros.ros.nodes.speech_recognition:main",
        ],
    },
)
