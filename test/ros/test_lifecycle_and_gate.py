"""The recognizer as a managed lifecycle node, driven through its lifecycle services over real DDS the way a
lifecycle manager (or `ros2 lifecycle set`) drives it, and the robot-speaking gate; the typed Transcript results
(their stamps on the audio's clock, the contract of one final per id) seen on the way.

One composed speech_recognition process (stamped audio, so the stamps can be checked) started with autostart false.
"""

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_harness import AudioDriver, Listener, NodeProcess, s16le, wait_until
from std_msgs.msg import Bool

from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.topics import nanoseconds_of

NAMESPACE = "managed"
CLIPS = [  # short real clips that tiny.en gets (nearly) right, so that hearing one is unmistakable
    "librispeech_testclean_fakebob61/61-70968-0060.flac",  # no thanks i am glad to give you such easy happiness
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0930.flac",  # he might even have been made amiable
    "librispeech_testclean_fakebob61/61-70968-0016.flac",  # and then they became vexed and would have snatched...
    "ljspeech_coqui/LJ001-0013.flac",  # than in the same operations with ugly ones
]
S16_RATE = 2 * 16000  # bytes per second of 16 kHz mono S16LE
SILENCE_S = 1.5  # after each clip, so that the VAD ends its utterance
SPEED = 4.0
HEARD_RECALL = 0.6  # a final holding this share of a clip's reference words has heard it
UNHEARD_RECALL = 0.3
TIMEOUT_S = 60.0
TAIL_MS = 300.0  # gate.tail_ms's default
SHOWN_S = 0.02  # /diagnostics shows 4 significant digits: 0.01 s beyond 10 s, twice that for a difference


def recall(reference: str, text: str) -> float:
    words, heard = normalise(reference).split(), set(normalise(text).split())
    return sum(word in heard for word in words) / len(words)


@pytest.fixture(scope="module")
def clips(sample_clips, sample_audio):
    return [(sample_audio(c), sample_clips[c].reference) for c in CLIPS]


@pytest.fixture(scope="module")
def managed(ros_context):
    process = NodeProcess("speech_recognition", "-r", f"__ns:=/{NAMESPACE}", "-p", "autostart:=false",
                          "-p", "audio.stamped:=true")
    listener = Listener(ros_context, NAMESPACE)
    driver = AudioDriver(ros_context, NAMESPACE, stamped=True)
    try:
        driver.wait_for_subscriber(listener, timeout=60)
        yield process, listener, driver
    finally:
        driver.close()
        listener.close()
    assert process.stop() == 0, process.log


def call(listener, service_type, name: str, request):
    client = listener.node.create_client(service_type, f"/{NAMESPACE}/recognizer/{name}")
    try:
        assert client.wait_for_service(timeout_sec=30), f"no service {name}"
        future = client.call_async(request)
        assert wait_until(future.done, TIMEOUT_S), f"{name} gave no answer"
        return future.result()
    finally:
        listener.node.destroy_client(client)


def state(listener) -> str:
    return call(listener, GetState, "get_state", GetState.Request()).current_state.label


def transition(listener, transition_id: int) -> bool:
    return call(listener, ChangeState, "change_state",
                ChangeState.Request(transition=Transition(id=transition_id))).success


def values(listener, node: str) -> dict:
    status = listener.latest(listener.status_name(node))
    return {} if status is None else status.values


def value(listener, node: str, key: str) -> float:
    return float(values(listener, node).get(key, "nan"))


def say(driver, audio: np.ndarray) -> None:
    driver.stream(s16le(np.concatenate([audio, np.zeros(int(SILENCE_S * 16000), np.float32)])), S16_RATE,
                  speed=SPEED)


def finals_since(listener, count: int) -> list:
    with listener.lock:
        return [e for e in listener.events[count:] if e.final]


def say_until_reported(listener, driver, audio: np.ndarray, node: str = "recognizer") -> None:
    """Says ``audio`` and waits until the audio subscriber segmented another utterance and the recognizer reported
    after that: what was to come of the utterance has come by then (the speech topic is reliable and in order)."""
    segmented_before = value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED)
    say(driver, audio)
    assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED)
                             > segmented_before, TIMEOUT_S), values(listener, "audio_subscriber")
    assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.INPUT_QUEUE_S) == 0, TIMEOUT_S)
    seen = len(listener.diagnostics)
    assert listener.wait_for(lambda: sum(listener.status_name(node) in d for _, d in listener.diagnostics[seen:])
                             >= 2, TIMEOUT_S)


def expect_heard(listener, events_before: int, reference: str) -> list:
    assert listener.wait_for(lambda: any(recall(reference, e.text) >= HEARD_RECALL
                                         for e in finals_since(listener, events_before)), TIMEOUT_S), (
        reference, [e.text for e in finals_since(listener, events_before)])
    return finals_since(listener, events_before)


def expect_stamped_within_clip(listener, events_before: int, final, first_sample_ns: int, clip_s: float) -> None:
    """The final is stamped with the utterance's first sample on the audio's (the driver's) clock: after where the
    clip began, before its end; its partials carry the same stamp and id."""
    assert first_sample_ns <= nanoseconds_of(final.header.stamp) < first_sample_ns + clip_s * 1e9
    with listener.lock:
        partials = [e for e in listener.events[events_before:] if not e.final and e.utterance_id == final.utterance_id]
    assert all(p.header.stamp == final.header.stamp for p in partials)


def test_configure_loads_activate_recognizes_deactivate_pauses_cleanup_frees(managed, clips):
    process, listener, driver = managed
    recognizer = listener.status_name("recognizer")
    assert state(listener) == "unconfigured"
    assert listener.wait_for(lambda: values(listener, "recognizer").get(diagnostics.LIFECYCLE_STATE)
                             == "unconfigured", TIMEOUT_S)
    assert "ready: encoder" not in process.log  # no model loaded yet

    # Unconfigured: the utterance is segmented, nothing recognizes it, and the audio subscriber counts the speech
    # that went out with no recognizer subscribed (a recognizer is subscribed once configured).
    events = len(listener.events)
    say_until_reported(listener, driver, clips[0][0])
    assert len(listener.events) == events
    assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.UNHEARD_SPEECH_S) > 1.0,
                             TIMEOUT_S), values(listener, "audio_subscriber")
    unheard_s = value(listener, "audio_subscriber", diagnostics.UNHEARD_SPEECH_S)

    assert transition(listener, Transition.TRANSITION_CONFIGURE)
    assert state(listener) == "inactive" and "ready: encoder" in process.log
    # Inactive: the speech arrives and is ignored, counted.
    say_until_reported(listener, driver, clips[1][0])
    assert value(listener, "recognizer", diagnostics.IGNORED_INACTIVE) > 0
    assert value(listener, "audio_subscriber", diagnostics.UNHEARD_SPEECH_S) == unheard_s
    assert len(listener.events) == events and listener.latest_status(recognizer).message.startswith("inactive")

    assert transition(listener, Transition.TRANSITION_ACTIVATE) and state(listener) == "active"
    first_sample_ns = driver.stamp_ns
    say(driver, clips[2][0])
    final = expect_heard(listener, events, clips[2][1])[-1]
    expect_stamped_within_clip(listener, events, final, first_sample_ns, len(clips[2][0]) / 16000)
    assert final.end_s > final.start_s and 0 < final.confidence <= 1 and final.language == "en"
    assert final.encoder_backend == "onnx" and final.encoder_ms > 0 and final.decoder_ms > 0

    assert transition(listener, Transition.TRANSITION_DEACTIVATE) and state(listener) == "inactive"
    events = len(listener.events)
    say_until_reported(listener, driver, clips[3][0])
    assert len(listener.events) == events

    assert transition(listener, Transition.TRANSITION_CLEANUP) and state(listener) == "unconfigured"
    assert "model freed" in process.log
    assert listener.wait_for(lambda: listener.latest_status(recognizer).message == "unconfigured: no model loaded",
                             TIMEOUT_S)
    # Configured again, it loads the model again and recognizes.
    assert transition(listener, Transition.TRANSITION_CONFIGURE)
    assert transition(listener, Transition.TRANSITION_ACTIVATE) and state(listener) == "active"
    say(driver, clips[0][0])
    expect_heard(listener, events, clips[0][1])
    assert listener.contract_violations == []


def test_audio_while_the_robot_speaks_and_for_the_tail_after_is_not_recognized(managed, clips):
    process, listener, driver = managed
    if state(listener) != "active":
        assert transition(listener, Transition.TRANSITION_CONFIGURE) or state(listener) == "inactive"
        assert transition(listener, Transition.TRANSITION_ACTIVATE)
    speaking = listener.node.create_publisher(Bool, topics.ROBOT_SPEAKING, topics.ROBOT_SPEAKING_QOS)
    try:
        assert wait_until(lambda: speaking.get_subscription_count() > 0, TIMEOUT_S)
        gated = value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S)
        closings = value(listener, "audio_subscriber", diagnostics.GATE_CLOSINGS)
        speaking.publish(Bool(data=True))
        assert listener.wait_for(lambda: values(listener, "audio_subscriber").get(diagnostics.ROBOT_SPEAKING)
                                 == "True", TIMEOUT_S)
        events = len(listener.events)
        segmented = value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED)
        say(driver, clips[1][0])  # the robot's own voice, say
        seconds = len(clips[1][0]) / 16000 + SILENCE_S
        assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S)
                                 >= gated + seconds - 0.01, TIMEOUT_S), values(listener, "audio_subscriber")
        assert value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED) == segmented
        assert value(listener, "audio_subscriber", diagnostics.GATE_CLOSINGS) == closings + 1
        assert not any(recall(clips[1][1], e.text) >= UNHEARD_RECALL for e in finals_since(listener, events))

        speaking.publish(Bool(data=False))
        assert listener.wait_for(lambda: values(listener, "audio_subscriber").get(diagnostics.ROBOT_SPEAKING)
                                 == "False", TIMEOUT_S)
        gated = value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S)
        driver.stream(s16le(np.zeros(16000, np.float32)), S16_RATE, speed=SPEED)  # 1 s: the tail and then some
        assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.INPUT_QUEUE_S) == 0
                                 and value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S) > gated,
                                 TIMEOUT_S)
        assert value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S) == pytest.approx(
            gated + TAIL_MS / 1000, abs=SHOWN_S)
        say(driver, clips[3][0])  # the person again, heard
        expect_heard(listener, events, clips[3][1])
        assert value(listener, "audio_subscriber", diagnostics.GATED_AUDIO_S) == pytest.approx(
            gated + TAIL_MS / 1000, abs=SHOWN_S)
    finally:
        listener.node.destroy_publisher(speaking)
    assert listener.contract_violations == []


def test_an_utterance_in_progress_when_the_robot_starts_speaking_is_ended_there_and_transcribed(managed, clips):
    process, listener, driver = managed
    assert state(listener) == "active"
    speaking = listener.node.create_publisher(Bool, topics.ROBOT_SPEAKING, topics.ROBOT_SPEAKING_QOS)
    try:
        assert wait_until(lambda: speaking.get_subscription_count() > 0, TIMEOUT_S)
        events = len(listener.events)
        segmented = value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED)
        audio, reference = clips[2]
        said = " ".join(reference.split()[:3])  # what the first half of the clip surely holds
        driver.stream(s16le(audio[: len(audio) // 2]), S16_RATE, speed=SPEED)  # the person is cut off mid-sentence
        assert listener.wait_for(lambda: value(listener, "audio_subscriber", diagnostics.UTTERANCES_SEGMENTED)
                                 > segmented and value(listener, "audio_subscriber", diagnostics.INPUT_QUEUE_S) == 0,
                                 TIMEOUT_S)
        speaking.publish(Bool(data=True))
        # No pause ends it: only the gate does. Its final holds the words said before.
        assert listener.wait_for(lambda: any(recall(said, e.text) == 1
                                             for e in finals_since(listener, events)), TIMEOUT_S), (
            [e.text for e in finals_since(listener, events)])
        speaking.publish(Bool(data=False))
        assert listener.wait_for(lambda: values(listener, "audio_subscriber").get(diagnostics.ROBOT_SPEAKING)
                                 == "False", TIMEOUT_S)
    finally:
        listener.node.destroy_publisher(speaking)
    assert listener.contract_violations == []


def test_shutdown_from_active_frees_the_model_and_the_process_still_stops_cleanly(managed):
    process, listener, driver = managed
    assert state(listener) == "active"
    assert transition(listener, Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert state(listener) == "finalized"
    assert "model freed" in process.log.rsplit("active: recognizing", 1)[-1]
