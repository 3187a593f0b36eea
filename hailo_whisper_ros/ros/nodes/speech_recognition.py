"""`speech_recognition`: the audio subscriber, the recognizer and the transcript publisher in one process.

One process to run, with the memory of one interpreter (the launch file starts it with `composed:=true`; by default
it starts the three nodes as three processes, which do not share a GIL), while each node keeps its own name,
parameters and diagnostics, so `--params-file config/speech_recognition.yaml` configures it exactly as it configures
the nodes run one by one.
"""

from hailo_whisper_ros.ros.nodes.audio_subscriber import AudioSubscriberNode
from hailo_whisper_ros.ros.nodes.recognizer import RecognizerNode
from hailo_whisper_ros.ros.nodes.transcript_publisher import TranscriptPublisherNode
from hailo_whisper_ros.ros.runner import run_nodes


def main(args=None) -> int:
    return run_nodes(args, [AudioSubscriberNode, RecognizerNode, TranscriptPublisherNode])
