"""`recognizer`: utterances on `speech` -> partial and final results on `transcript/events`.

Holds the encoder (Hailo NPU or ONNX on the CPU, with the core's fallback) and the CPU KV-cache decoder. The
subscription callback only hands the audio to the core's queue; a worker thread transcribes. When it falls
behind, the core drops the oldest audio (``queue.max_audio_s``) and counts it. A managed (lifecycle) node: see
RecognizerNode.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import traceback
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from hailo_whisper_msgs.msg import Speech, Transcript
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import GUARDS, DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.core.streaming import UtteranceTranscriber
from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions
from hailo_whisper_ros.export.store import resolve_model_dir
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.topics import from_message, transcript_message
from hailo_whisper_ros.ros.worker import NodeWorker

BEHIND_FRACTION = 0.5  # WARN when the queue holds more than this share of queue.max_audio_s
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


@dataclass(frozen=True)
class LifecycleOptions(Options):
    PARAMETER_GROUP = "lifecycle"

    autostart: bool = option(
        True, "Configure (load the model) and activate at start, as a plain node; false: wait in unconfigured for "
        "a lifecycle manager's transitions.", read_only=True, parameter="autostart")


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"lifecycle": LifecycleOptions, "model": RecognizerConfig, "decoding": DecodingOptions,
                    "streaming": StreamingOptions}


class RecognizerNode(LifecycleNode):
    """A managed node: configure loads the model and subscribes to `speech`, activate starts recognizing (the
    results published), deactivate pauses (the speech that comes is ignored and counted, the open utterance
    dropped), cleanup frees the model; shutdown frees it from any state."""

    def __init__(self, **kwargs):
        super().__init__("recognizer", **kwargs)
        # Transcribes what the speech callback queues; it also runs when nothing arrives, to decode an utterance
        # whose audio stopped coming (a pause). Made first: rclpy destroys a node whose constructor raised too.
        self.worker = NodeWorker("recognizer", self._work, idle_wait_s=0.1)
        # Held by each worker step and by the transitions that change what it uses. The callbacks and the
        # transitions run on the executor's one thread, so they read the model's objects without it.
        self.model_lock = threading.Lock()
        self.recognizer: Recognizer | None = None
        self.transcriber: UtteranceTranscriber | None = None
        self.active = False
        self.configure_error: HailoWhisperError | None = None
        self.last_language = ""  # of the last final, for /diagnostics
        self.binder = ParameterBinder(self)
        (lifecycle, self.config, _, _) = self.binder.declare(PARAMETER_GROUPS)
        self.binder.groups["decoding"].check = self._check_decoding
        self.binder.on_change(self._on_options)
        self.log = RateLimitedLog(self.get_logger())
        self.utterance_starts: dict[int, int] = {}
        self.utterance_stamps: dict[int, Time] = {}  # utterance -> its first sample on the audio's clock
        self.malformed = 0
        self.ignored_inactive = 0  # speech messages that came while not active
        self.transcribing = False  # a worker step is between taking queued speech and publishing its results
        self.last_error_count = 0
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()
        if lifecycle.autostart:
            if self.trigger_configure() != SUCCESS:
                raise self.configure_error
            self.trigger_activate()

    def _check_decoding(self, options: DecodingOptions) -> None:
        # Decoding options are checked against the loaded model too (a language an English-only model lacks, an
        # initial prompt too long for its decoder).
        if self.recognizer is not None:
            self.recognizer.check_options(options)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            model_dir = resolve_model_dir(self.config.model_dir, log=self.get_logger().info)  # exported on first use
            config = dataclasses.replace(self.config, model_dir=model_dir)
            self.get_logger().info(f"loading model {config.model_dir} (encoder {config.encoder})")
            recognizer = Recognizer(config)
            try:
                decoding = self.binder.groups["decoding"].options
                recognizer.check_options(decoding)
                transcriber = UtteranceTranscriber(recognizer, decoding, self.binder.groups["streaming"].options)
            except HailoWhisperError:
                recognizer.close()
                raise
        except Exception as error:  # rclpy would turn it into ERROR without a word
            self.configure_error = error
            told = str(error) if isinstance(error, HailoWhisperError) else traceback.format_exc()
            self.get_logger().error(f"configure failed: {told}")
            return FAILURE
        if recognizer.fallback_reason:
            self.get_logger().warning(f"running on the CPU: {recognizer.fallback_reason}")
        self.model_name = f"{recognizer.info.name} ({config.model_dir})"
        with self.model_lock:
            self.recognizer, self.transcriber = recognizer, transcriber
        self.speech_subscription = self.create_subscription(Speech, topics.SPEECH, self._on_speech, topics.SPEECH_QOS)
        self.events_pub = self.create_lifecycle_publisher(Transcript, topics.TRANSCRIPT_EVENTS, topics.RESULTS_QOS)
        # Last: whoever waits for this line (a launch file, the tests) may stop the node as soon as it appears.
        self.get_logger().info(
            f"ready: encoder {recognizer.encoder_backend}, decoder {recognizer.decoder_backend}, "
            f"{resident_mb():.0f} MB resident"
        )
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.model_lock:
            self.active = True
        self.get_logger().info("active: recognizing")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.model_lock:
            self.active = False
            self.transcriber.reset()  # the queued speech and the open utterance (it gets no final) go
            self.utterance_starts.clear()
            self.utterance_stamps.clear()
        self.get_logger().info("inactive: speech is ignored until activated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()  # back to unconfigured, with nothing held
        return SUCCESS

    def _release(self) -> None:
        """Free the model and what configure made (idempotent)."""
        with self.model_lock:
            self.active = False
            recognizer, self.recognizer, self.transcriber = self.recognizer, None, None
        if recognizer is None:
            return
        self.destroy_subscription(self.speech_subscription)
        self.destroy_lifecycle_publisher(self.events_pub)
        recognizer.close()
        self.utterance_starts.clear()
        self.utterance_stamps.clear()
        self.get_logger().info("model freed")

    def _on_options(self, key: str, options) -> None:
        if self.transcriber is None:
            return  # configure reads the binder's options
        if key == "decoding":
            self.transcriber.update_options(decoding=options)
        elif key == "streaming":
            self.transcriber.update_options(streaming=options)

    def _on_speech(self, message: Speech) -> None:
        if not self.active:
            self.ignored_inactive += 1
            return
        try:
            event = from_message(message, self.utterance_starts)
        except ValueError as error:
            self.malformed += 1
            self.log.warn("malformed", str(error))
            return
        if message.event == Speech.START:
            self.utterance_stamps[event.utterance_id] = event.stamp
        self.transcriber.submit(event.utterance_id, event.event)
        with self.worker.lock:
            self.worker.wake()

    def _work(self) -> None:
        with self.model_lock:
            if not self.active:
                return
            self.transcribing = True
            try:
                self._transcribe_pending()
            finally:
                self.transcribing = False

    def _transcribe_pending(self) -> None:
        """Publish the partials and finals of the queued speech; called with model_lock held."""
        for event in self.transcriber.process_pending():
            pop = self.utterance_stamps.pop if event.kind == FINAL else self.utterance_stamps.get
            stamp = pop(event.utterance_id, Time())
            if event.kind == FINAL and event.result.language:
                self.last_language = language_label(event.result.language, event.result.language_prob)
            self.events_pub.publish(transcript_message(event, stamp))

    def _status(self):
        state = self._state_machine.current_state[1]  # rclpy has no public accessor; its trigger_shutdown reads it
        if self.transcriber is None:
            return diagnostics.OK, f"{state}: no model loaded", {diagnostics.LIFECYCLE_STATE: state}
        stats = self.transcriber.stats()
        values = {
            diagnostics.LIFECYCLE_STATE: state,
            diagnostics.IGNORED_INACTIVE: self.ignored_inactive,
            diagnostics.ENCODER_BACKEND: self.recognizer.encoder_backend,
            diagnostics.DECODER_BACKEND: self.recognizer.decoder_backend,
            diagnostics.FALLBACK_REASON: self.recognizer.fallback_reason or "",
            diagnostics.MODEL: self.model_name,
            diagnostics.LAST_LANGUAGE: self.last_language,
            diagnostics.UTTERANCES: stats.utterances,
            diagnostics.PARTIALS: stats.partials,
            diagnostics.PARTIALS_SKIPPED: stats.partials_skipped,
            diagnostics.NO_SPEECH_REJECTIONS: stats.no_speech_rejections,
            diagnostics.INFERENCE_ERRORS: stats.errors,
            diagnostics.REAL_TIME_FACTOR: stats.real_time_factor,
            # From the arrival of the end of speech to the final, as a listener waits (StreamingStats).
            diagnostics.LATENCY_P50_MS: -1.0 if stats.speech_end_latency_p50_ms is None
            else stats.speech_end_latency_p50_ms,
            diagnostics.LATENCY_P95_MS: -1.0 if stats.speech_end_latency_p95_ms is None
            else stats.speech_end_latency_p95_ms,
            diagnostics.QUEUE_DEPTH_S: stats.queue_depth_s,
            diagnostics.TRANSCRIBING: self.transcribing,
            diagnostics.DROPPED_AUDIO_S: stats.audio_dropped_s,
            diagnostics.AUDIO_TRANSCRIBED_S: stats.speech_s_transcribed,
            diagnostics.RESIDENT_MEMORY_MB: resident_mb(),
            diagnostics.MALFORMED_SPEECH: self.malformed,
            diagnostics.GUARDS_FIRED: ", ".join(f"{guard}: {stats.guards_fired.get(guard, 0)}" for guard in GUARDS),
            diagnostics.LOOP_RECOVERIES: stats.loop_recoveries,
            diagnostics.UNRECOVERED_LOOPS: stats.unrecovered_loops,
        }
        new_errors = stats.errors - self.last_error_count
        self.last_error_count = stats.errors
        if new_errors:
            return diagnostics.ERROR, f"{new_errors} inference error(s) in the last period", values
        if stats.queue_depth_s > BEHIND_FRACTION * self.transcriber.options.max_queue_s:
            return diagnostics.WARN, f"falling behind: {stats.queue_depth_s:.1f} s of audio waiting", values
        if stats.audio_dropped_s > 0:
            return diagnostics.WARN, f"fell behind: {stats.audio_dropped_s:.1f} s of audio dropped", values
        if self.recognizer.fallback_reason:
            return diagnostics.WARN, f"CPU fallback: {self.recognizer.fallback_reason}", values
        if not self.active:
            return diagnostics.OK, f"{state}: speech is ignored", values
        return diagnostics.OK, f"{self.recognizer.encoder_backend} encoder, {stats.utterances} utterances", values

    def destroy_node(self):
        self.worker.stop(timeout_s=10)
        self._release()
        return super().destroy_node()


def language_label(language: str, probability: float) -> str:
    return f"{language} (given)" if math.isnan(probability) else f"{language} (p {probability:.2f})"


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [RecognizerNode])
