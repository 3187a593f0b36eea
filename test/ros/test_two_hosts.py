"""A robot and a base station over a lossy link (evaluation/two_hosts.py): two network namespaces this test makes
and removes, joined by a 20 Mbit/s veth link whose server end loses a tenth of the UDP packets; the audio subscriber
on the robot, the recognizer and transcript publisher on the server, with the shipped Fast DDS profile and
300-sample speech messages. Every clip's final reaches the robot and is right."""

import tempfile
from pathlib import Path

import pytest

from hailo_whisper_ros.evaluation import netns, two_hosts
from hailo_whisper_ros.evaluation.long_recording import build_long_recording
from hailo_whisper_ros.evaluation.ros_layouts import write_driver_wav

CLIPS = ("librispeech_testclean_kw/1089-134686-0001.flac", "ljspeech_coqui/LJ001-0004.flac",
         "librispeech_testclean_fakebob61/61-70968-0040.flac")
LOSS_PERCENT = 10
MAX_WER = 0.15  # tiny.en's word errors on these clips on one host: 2 of 43 words


@pytest.fixture(scope="module")
def link():
    if reason := netns.unavailable():
        pytest.skip(reason)
    try:
        with netns.lossy_link() as made:
            yield made
    except OSError as error:  # root in a container without CAP_NET_ADMIN, say
        pytest.skip(f"network namespaces cannot be made here: {error}")


def test_every_final_crosses_a_lossy_link_and_is_right(link, sample_clips, model_dir):
    recording = build_long_recording([sample_clips[clip] for clip in CLIPS])
    with tempfile.TemporaryDirectory() as scratch:
        robot = two_hosts.Robot("", recording, write_driver_wav(recording, Path(scratch) / "robot.wav"))
        run = two_hosts.measure_link(link, two_hosts.NEW, LOSS_PERCENT, [robot], model_dir, threads=2)
    (figures,) = run.robots
    assert run.counters.dropped_packets > 0, "the link lost nothing: the nodes did not talk across it"
    assert figures.clips_waited_for == len(CLIPS), run.finals
    assert figures.wer <= MAX_WER, run.finals
