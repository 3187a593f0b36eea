"""Streaming voice activity detection: Silero VAD v6 on ONNX Runtime, and a segmenter that cuts a live 16 kHz stream
into utterances for the recognizer.

The model is the ``silero_vad_v6.onnx`` of faster-whisper, shipped in this package (``silero_vad/``, with its
licence) so that the nodes run with ``requirements.txt`` alone; nothing is downloaded.
Its graph takes ``input`` [windows, 64 + 512] (each 512-sample window preceded by the last 64 samples before it) and
the LSTM state ``h``, ``c`` [1, 1, 128]; it runs the windows in sequence, carrying the state, and returns one speech
probability per window plus the new state. So a chunk's complete windows go through in one call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from hailo_whisper_ros.core.audio import short_time_energy
from hailo_whisper_ros.core.backends.onnx import create_ort_session
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option

WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)


SILERO_MODEL_PATH = Path(__file__).parent / "silero_vad" / "silero_vad_v6.onnx"


class SileroVad:
    """Speech probability of each 512-sample window (32 ms) of a 16 kHz stream fed in chunks of any size.

    The LSTM state, the 64-sample context and an incomplete window are carried from one ``process`` call to the next,
    so the probabilities do not depend on how the stream is chunked.
    """

    window_samples = WINDOW_SAMPLES

    def __init__(self, model_path: str | Path | None = None):
        path = Path(model_path) if model_path is not None else SILERO_MODEL_PATH
        if not path.is_file():
            raise HailoWhisperError(f"Silero VAD model not found: {path}")
        # The model is tiny: more threads only add synchronisation and steal cores from the encoder and decoder.
        self._session = create_ort_session(path, threads=1)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: zero state and context, drop an incomplete window."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Speech probabilities (float32) of the windows that this chunk completes, in stream order."""
        audio = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32).reshape(-1)])
        n_windows = len(audio) // WINDOW_SAMPLES
        self._pending = audio[n_windows * WINDOW_SAMPLES :]
        if n_windows == 0:
            return np.zeros(0, dtype=np.float32)
        stream = np.concatenate([self._context, audio[: n_windows * WINDOW_SAMPLES]])
        stride = stream.strides[0]
        batch = np.lib.stride_tricks.as_strided(
            stream, shape=(n_windows, CONTEXT_SAMPLES + WINDOW_SAMPLES), strides=(WINDOW_SAMPLES * stride, stride)
        )
        probabilities, self._h, self._c = self._session.run(
            None, {"input": np.ascontiguousarray(batch), "h": self._h, "c": self._c}
        )
        self._context = stream[-CONTEXT_SAMPLES:].copy()
        return np.asarray(probabilities, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class VadOptions(Options):
    """How the segmenter turns speech probabilities into utterances; validated on construction (and so by
    ``dataclasses.replace``)."""

    PARAMETER_GROUP = "vad"

    threshold: float = option(
        0.5, "Speech probability at or above which a 32 ms window is speech and starts an utterance.",
        range=(0.01, 0.99))
    neg_threshold: float | None = option(
        None, "Probability below which a window is silence once speech started (hysteresis; at most threshold); "
        "windows between the two thresholds continue the current state. None: max(threshold - 0.15, 0.01), as "
        "Silero.", range=(0.01, 0.99), none_as=0.0)
    min_silence_ms: float = option(600.0, "Silence that ends an utterance.", unit="ms", range=(0.0, 10000.0))
    speech_pad_ms: float = option(
        200.0, "Audio kept before the first and after the last speech window; at most min_silence_ms, since the "
        "trailing pad is taken from the silence that ended the utterance.", unit="ms", range=(0.0, 2000.0))
    min_speech_ms: float = option(
        250.0, "Speech an utterance needs: shorter bursts (clicks, bumps) are dropped, and the start of an utterance "
        "is announced once this much speech was heard.", unit="ms", range=(0.0, 10000.0))
    pre_roll_ms: float = option(
        100.0, "Audio kept before the start on top of speech_pad_ms: Silero reacts a window or two after a soft "
        "onset (an unvoiced consonant), which Whisper still needs to hear.", unit="ms", range=(0.0, 2000.0))
    max_speech_s: float = option(
        10.0, "Longest utterance including pads, at most the encoder window; at least pre_roll_ms + speech_pad_ms + "
        "min_speech_ms. Longer speech is cut at the quietest point of its last 1.5 s and goes on as the next "
        "utterance.",
        unit="s", range=(1.0, 30.0))

    def check(self) -> None:
        if self.neg_threshold is not None and self.neg_threshold > self.threshold:
            raise HailoWhisperError(
                f"VadOptions option neg_threshold={self.neg_threshold} must be <= threshold ({self.threshold})"
            )
        if self.speech_pad_ms > self.min_silence_ms:
            raise HailoWhisperError(
                f"VadOptions option speech_pad_ms={self.speech_pad_ms} must be <= min_silence_ms={self.min_silence_ms}"
            )
        shortest_ms = self.pre_roll_ms + self.speech_pad_ms + self.min_speech_ms
        if self.max_speech_s * 1000.0 < shortest_ms:
            raise HailoWhisperError(
                f"VadOptions option max_speech_s={self.max_speech_s} must be >= pre_roll_ms + speech_pad_ms + "
                f"min_speech_ms ({shortest_ms / 1000.0:g} s)"
            )

    @property
    def silence_threshold(self) -> float:
        """The effective neg_threshold."""
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


# A forced cut is placed in this many final seconds of an over-long utterance (at most half of max_speech_s).
CUT_SEARCH_S = 1.5
# Windows whose probability is within this of the lowest count as equally quiet; energy decides among them.
_CUT_PROBABILITY_TOLERANCE = 0.2


@dataclass(frozen=True)
class SpeechStarted:
    """An utterance starts at absolute stream sample ``start`` (pads included)."""

    start: int


@dataclass(frozen=True)
class SpeechAudio:
    """Audio of the current utterance: stream samples ``start`` .. ``start + len(audio)``, following the previous."""

    start: int
    audio: np.ndarray


@dataclass(frozen=True)
class SpeechEnded:
    """The utterance [start, end) ended; ``forced`` when cut at max_speech_s (more speech may follow at ``end``).
    ``speech_end``: after the last window at or above the VAD's threshold (the trailing pad excluded; where
    StreamingTranscriber's speech span ends too), from where a listener waits for the final; None when not known
    (then ``end``)."""

    start: int
    end: int
    forced: bool
    speech_end: int | None = None


SegmenterEvent = SpeechStarted | SpeechAudio | SpeechEnded


class SpeechProbabilities(Protocol):
    """What the segmenter needs of a VAD (SileroVad, or a stand-in in tests)."""

    window_samples: int

    def process(self, audio: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


# Speech probabilities kept for locating the speech inside an utterance: longer than the longest utterance (the
# 30 s encoder window plus the pads before its start).
PROBABILITY_HISTORY_S = 32.0


class SpeechProbabilityLog:
    """A VAD that records the speech probability of the recent windows with their stream positions, so that an
    utterance can report where speech was heard inside its padded audio."""

    def __init__(self, vad: SpeechProbabilities):
        self._vad = vad
        self.window_samples = vad.window_samples
        self._history = int(PROBABILITY_HISTORY_S * SAMPLE_RATE) // self.window_samples
        self._starts = np.zeros(0, dtype=np.int64)  # stream position of each recorded window
        self._probabilities = np.zeros(0, dtype=np.float32)
        self.origin = 0  # stream position of the segmenter's sample 0 (its owner restarts it)
        self.reset()

    def reset(self) -> None:
        """The segmenter starts a new stream. The history stays: the utterance that the segmenter's flush closed
        (just before it resets) still needs it."""
        self._vad.reset()
        self._windows = 0

    def process(self, audio: np.ndarray) -> np.ndarray:
        probabilities = self._vad.process(audio)
        starts = self.origin + (self._windows + np.arange(len(probabilities))) * self.window_samples
        self._windows += len(probabilities)
        self._starts = np.concatenate([self._starts, starts])[-self._history :]
        self._probabilities = np.concatenate([self._probabilities, probabilities])[-self._history :]
        return probabilities

    @property
    def latest_probability(self) -> float:
        return float(self._probabilities[-1]) if len(self._probabilities) else 0.0

    def speech_span(self, start: int, end: int, threshold: float) -> tuple[int, int]:
        """From the first to the end of the last window at or above threshold overlapping [start, end), clipped to
        it; [start, end) itself if there is none."""
        speech = np.flatnonzero(
            (self._starts < end) & (self._starts + self.window_samples > start) & (self._probabilities >= threshold)
        )
        if len(speech) == 0:
            return start, end
        return max(int(self._starts[speech[0]]), start), min(int(self._starts[speech[-1]]) + self.window_samples, end)


class Segmenter:
    """Cuts a 16 kHz float32 stream, fed in chunks of any size, into utterances, reported as events.

    Every utterance is reported as SpeechStarted, SpeechAudio events whose audio concatenates to exactly stream
    samples [start, end), then SpeechEnded. Utterances never overlap; the samples between them are silence. Audio is
    released as soon as it is sure to belong to the utterance: at once during speech, held back by up to
    ``speech_pad_ms`` during a pause, and by ``CUT_SEARCH_S`` once an utterance nears ``max_speech_s``.
    """

    def __init__(self, options: VadOptions | None = None, vad: SpeechProbabilities | None = None):
        self.options = options if options is not None else VadOptions()
        self.vad = vad if vad is not None else SileroVad()
        self.reset()

    def reset(self) -> None:
        """Start a new stream at sample 0."""
        self.vad.reset()
        self._received = 0  # stream samples fed
        self._windows_done = 0  # VAD windows processed
        self._audio = np.zeros(0, dtype=np.float32)  # retained stream samples, from _audio_start
        self._audio_start = 0
        self._last_end = 0  # end of the previous utterance: the next may not start before it
        self._in_utterance = False
        self._started = False  # SpeechStarted sent (min_speech_ms of speech heard)
        self._start = 0  # utterance start, pads included
        self._onset = 0  # first speech window of the utterance
        self._speech_end = 0  # end of its last window at or above the silence threshold
        self._heard_until = 0  # end of its last window at or above the threshold: where speech was last heard
        self._silence_start: int | None = None  # start of the pause in progress
        self._released = 0  # utterance audio sent up to here
        self._recent: deque[tuple[int, float, float]] = deque()  # (window start, probability, energy)

    @property
    def utterance_open(self) -> bool:
        """An utterance has started (SpeechStarted sent) and not ended."""
        return self._in_utterance and self._started

    @property
    def pause_samples(self) -> int:
        """How long the pause in the open utterance has lasted (stream samples), 0 outside a pause. Beyond
        ``speech_pad_ms`` its audio is held back: the utterance is complete unless speech resumes."""
        if not self.utterance_open or self._silence_start is None:
            return 0
        return self._received - self._silence_start

    @property
    def released(self) -> int:
        """The stream sample up to which the open utterance's audio has been sent in SpeechAudio events."""
        return self._released

    def feed(self, audio: np.ndarray) -> list[SegmenterEvent]:
        """Process the next chunk of the stream; returns the events it caused, in order."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, audio])
        self._received += len(audio)
        events: list[SegmenterEvent] = []
        window = self.vad.window_samples
        probabilities = self.vad.process(audio)
        first = self._windows_done * window
        _, energies = short_time_energy(self._slice(first, first + len(probabilities) * window), window, window)
        for probability, energy in zip(probabilities, energies):
            window_start = self._windows_done * window
            self._windows_done += 1
            self._on_window(window_start, float(probability), float(energy) / window, events)
        self._release(events)
        self._forget_old_audio()
        return events

    def flush(self) -> list[SegmenterEvent]:
        """End the stream: close an utterance in progress at the last sample (or its pause's pad), then reset."""
        events: list[SegmenterEvent] = []
        limit = self._start + self._samples(self.options.max_speech_s)
        if self._in_utterance and self._started and self._received > limit:
            self._cut(limit, events)  # the final partial window took it past max_speech_s
        if self._in_utterance and self._started:
            end = self._received
            if self._silence_start is not None:
                end = min(end, self._silence_start + self._samples(self.options.speech_pad_ms / 1000.0))
            self._end(end, False, events)
        self.reset()
        return events

    def _on_window(self, window_start: int, probability: float, energy: float, events: list) -> None:
        options = self.options
        window_end = window_start + self.vad.window_samples
        if not self._in_utterance:
            if probability < options.threshold:
                return
            lead = self._samples((options.speech_pad_ms + options.pre_roll_ms) / 1000.0)
            self._in_utterance, self._started = True, False
            # Not before the previous utterance, nor before the retained audio (pads raised at run time).
            self._start = self._released = max(self._last_end, window_start - lead, self._audio_start)
            self._onset = window_start
            self._silence_start = None
            self._recent.clear()
        self._recent.append((window_start, probability, energy))
        while self._recent[0][0] < window_end - self._samples(self._cut_search_s()):
            self._recent.popleft()
        if probability >= options.threshold:
            self._silence_start = None
            self._heard_until = window_end
        elif probability < options.silence_threshold and self._silence_start is None:
            self._silence_start = window_start
        if self._silence_start is None:
            self._speech_end = window_end
        if not self._started and self._speech_end - self._onset >= self._samples(options.min_speech_ms / 1000.0):
            self._started = True
            events.append(SpeechStarted(self._start))
        paused = self._silence_start is not None and window_end - self._silence_start >= self._samples(
            options.min_silence_ms / 1000.0
        )
        limit = self._start + self._samples(options.max_speech_s)
        if not self._started and (paused or window_end >= limit):
            # Too little speech before a pause: a click or a bump, not an utterance.
            self._in_utterance = False
        elif paused:
            # The pause ended the utterance; its trailing pad may not take it past max_speech_s.
            pad_end = self._silence_start + self._samples(options.speech_pad_ms / 1000.0)
            self._end(min(pad_end, limit), False, events)
        elif window_end >= limit:
            self._cut(limit, events)

    def _cut(self, limit: int, events: list) -> None:
        """End an utterance that reached max_speech_s: at its pause if the pad fits, else at the quietest window."""
        pad = self._samples(self.options.speech_pad_ms / 1000.0)
        if self._silence_start is not None and self._silence_start + pad <= limit:
            self._end(self._silence_start + pad, True, events)
            return
        window = self.vad.window_samples
        candidates = [(start, p, e) for start, p, e in self._recent if start + window <= limit]
        cut = limit
        if candidates:
            quietest = min(p for _, p, _ in candidates) + _CUT_PROBABILITY_TOLERANCE
            start, _, _ = min((c for c in candidates if c[1] <= quietest), key=lambda c: c[2])
            cut = start + window // 2
        cut = self._end(cut, True, events)
        if self._silence_start is not None and cut >= self._silence_start:
            return  # cut inside the pause: no speech left to continue
        # Speech goes on: the rest is the next utterance, already confirmed as speech (a pause in progress included).
        self._in_utterance = self._started = True
        self._start = self._onset = self._released = cut
        events.append(SpeechStarted(cut))

    def _end(self, end: int, forced: bool, events: list) -> int:
        """Close the utterance at ``end`` (or at the audio already sent, if options changed since); returns the end."""
        end = max(end, self._released)
        self._release(events, up_to=end)
        events.append(SpeechEnded(self._start, end, forced, min(self._heard_until, end)))
        self._in_utterance = False
        self._last_end = end
        return end

    def _release(self, events: list, up_to: int | None = None) -> None:
        """Send the utterance audio that is certain: up to ``up_to``, or as far as no later end or cut can fall."""
        if not (self._in_utterance and self._started):
            return
        if up_to is None:
            # A pause can begin at the next window at the earliest, and a cut in the last CUT_SEARCH_S.
            next_window = self._windows_done * self.vad.window_samples
            up_to = min(next_window, self._start + self._samples(self.options.max_speech_s - self._cut_search_s()))
            if self._silence_start is not None:
                up_to = min(up_to, self._silence_start + self._samples(self.options.speech_pad_ms / 1000.0))
        if up_to > self._released:
            events.append(SpeechAudio(self._released, self._slice(self._released, up_to).copy()))
            self._released = up_to

    def _forget_old_audio(self) -> None:
        """Drop retained audio that no event can need any more."""
        next_window = self._windows_done * self.vad.window_samples
        lead = self._samples((self.options.speech_pad_ms + self.options.pre_roll_ms) / 1000.0)
        keep_from = min(next_window, max(self._last_end, next_window - lead))
        if self._in_utterance:
            keep_from = min(keep_from, self._released if self._started else self._start)
        drop = keep_from - self._audio_start
        if drop > 0:
            self._audio = self._audio[drop:]
            self._audio_start = keep_from

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._audio[start - self._audio_start : end - self._audio_start]

    def _cut_search_s(self) -> float:
        return min(CUT_SEARCH_S, self.options.max_speech_s / 2)

    @staticmethod
    def _samples(seconds: float) -> int:
        return int(round(seconds * SAMPLE_RATE))
