"""`recognizer`: utterances on `speech` -> partial and final results on `transcript/events`.

A lifecycle shell over the core's UtteranceTranscriber (the encoder on the Hailo NPU or ONNX on the CPU, the CPU
KV-cache decoder): the subscription callback only queues the speech; a worker thread transcribes and publishes.
When it falls behind, the core drops the oldest audio (``queue.max_audio_s``) and counts it.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from dataclasses import dataclass

from hailo_whisper_msgs.msg import Speech, Transcript
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.core.streaming import UtteranceTranscriber, load_utterance_transcriber
from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions
from hailo_whisper_ros.export.store import resolve_model_dir
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.topics import transcript_message
from hailo_whisper_ros.ros.worker import NodeWorker

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
        self.transcriber: UtteranceTranscriber | None = None
        self.active = False
        self.configure_error: HailoWhisperError | None = None
        self.last_language = ""  # of the last final, for /diagnostics
        self.binder = ParameterBinder(self)
        (lifecycle, self.config, _, _) = self.binder.declare(PARAMETER_GROUPS)
        self.binder.groups["decoding"].check = self._check_decoding
        self.binder.on_change(self._on_options)
        self.log = RateLimitedLog(self.get_logger())
        self.speech_reader = topics.SpeechReader()
        self.malformed = self.ignored_inactive = 0  # speech messages: not in the contract; while not active
        self.transcribing = False  # a worker step is between taking queued speech and publishing its results
        self.last_error_count = 0
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()
        if lifecycle.autostart:
            if self.trigger_configure() != SUCCESS:
                raise self.configure_error
            self.trigger_activate()

    def _check_decoding(self, options: DecodingOptions) -> None:
        if self.transcriber is not None:  # against the model too, once: _on_options applies them as checked
            self.transcriber.check_options(decoding=options)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            model_dir = resolve_model_dir(self.config.model_dir, log=self.get_logger().info)  # exported on first use
            config = dataclasses.replace(self.config, model_dir=model_dir)
            self.get_logger().info(f"loading model {config.model_dir} (encoder {config.encoder})")
            transcriber = load_utterance_transcriber(
                config, self.binder.groups["decoding"].options, self.binder.groups["streaming"].options)
        except Exception as error:  # rclpy would turn it into ERROR without a word
            self.configure_error = error
            told = str(error) if isinstance(error, HailoWhisperError) else traceback.format_exc()
            self.get_logger().error(f"configure failed: {told}")
            return FAILURE
        recognizer = transcriber.recognizer
        if recognizer.fallback_reason:
            self.get_logger().warning(f"running on the CPU: {recognizer.fallback_reason}")
        self.model_name = f"{recognizer.info.name} ({config.model_dir})"
        with self.model_lock:
            self.transcriber = transcriber
        self.speech_subscription = self.create_subscription(Speech, topics.SPEECH, self._on_speech, topics.SPEECH_QOS)
        self.events_pub = self.create_lifecycle_publisher(Transcript, topics.TRANSCRIPT_EVENTS, topics.RESULTS_QOS)
        # Last: whoever waits for this line (a launch file, the tests) may stop the node as soon as it appears.
        self.get_logger().info(f"ready: encoder {recognizer.encoder_backend}, decoder {recognizer.decoder_backend}, "
                               f"INT8 MatMuls {recognizer.int8_kernels}, {resident_mb():.0f} MB resident")
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
            self.speech_reader.clear()
        self.get_logger().info("inactive: speech is ignored until activated")
        return super().on_deactivate(state)

    def _release(self, state: LifecycleState | None = None) -> TransitionCallbackReturn:
        """Free the model and what configure made (idempotent): cleanup, shutdown, and error (back to unconfigured)."""
        with self.model_lock:
            self.active = False
            transcriber, self.transcriber = self.transcriber, None
        if transcriber is not None:
            self.destroy_subscription(self.speech_subscription)
            self.destroy_lifecycle_publisher(self.events_pub)
            transcriber.recognizer.close()
            self.speech_reader.clear()
            self.get_logger().info("model freed")
        return SUCCESS

    on_cleanup = on_shutdown = on_error = _release

    def _on_options(self, key: str, options) -> None:
        if self.transcriber is not None and key in ("decoding", "streaming"):  # else configure reads the binder's
            self.transcriber.update_options(**{key: options}, checked=True)

    def _on_speech(self, message: Speech) -> None:
        if not self.active:
            self.ignored_inactive += 1
            return
        try:
            speech = self.speech_reader.read(message)
        except ValueError as error:
            self.malformed += 1
            self.log.warn("malformed", str(error))
            return
        self.transcriber.submit(speech.utterance_id, speech.event)
        self.worker.wake()

    def _work(self) -> None:
        """Publish the partials and finals of the queued speech."""
        with self.model_lock:
            if not self.active:
                return
            self.transcribing = True
            try:
                for event in self.transcriber.process_pending():
                    if event.kind == FINAL and event.result.language:
                        self.last_language = diagnostics.language_label(event.result.language,
                                                                        event.result.language_prob)
                    self.events_pub.publish(transcript_message(event, self.speech_reader.stamp(event)))
            finally:
                self.transcribing = False

    def _status(self):
        state = self._state_machine.current_state[1]  # rclpy has no public accessor; its trigger_shutdown reads it
        if self.transcriber is None:
            return diagnostics.OK, f"{state}: no model loaded", {diagnostics.LIFECYCLE_STATE: state}
        stats = self.transcriber.stats()
        new_errors, self.last_error_count = stats.errors - self.last_error_count, stats.errors
        node_values = {
            diagnostics.LIFECYCLE_STATE: state,
            diagnostics.IGNORED_INACTIVE: self.ignored_inactive,
            diagnostics.MODEL: self.model_name,
            diagnostics.LAST_LANGUAGE: self.last_language,
            diagnostics.TRANSCRIBING: self.transcribing,
            diagnostics.MALFORMED_SPEECH: self.malformed,
            diagnostics.RESIDENT_MEMORY_MB: resident_mb(),
        }
        return diagnostics.recognizer_status(state, self.active, self.transcriber.recognizer, stats,
                                             self.transcriber.options.max_queue_s, new_errors, node_values)

    def destroy_node(self):
        self.worker.stop(timeout_s=10)
        self._release()
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [RecognizerNode])
