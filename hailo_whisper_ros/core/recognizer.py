"""Audio in, text out: features -> encoder (Hailo NPU or CPU) -> greedy KV-cache decoder.

Audio longer than the encoder window is split at quiet points and every part is transcribed, so nothing is ever
truncated silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hailo_whisper_ros.core.audio import speech_onset, split_at_quiet_points
from hailo_whisper_ros.core.backends.base import Encoder
from hailo_whisper_ros.core.backends.select import create_decoder, create_encoder
from hailo_whisper_ros.core.background import talker_end
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.constants import HOP_LENGTH, SAMPLE_RATE
from hailo_whisper_ros.core.decoding import (
    GUARDS,
    STOP_EOT,
    DecodedTokens,
    DecodingOptions,
    build_logit_filters,
    check_initial_prompt,
    greedy_decode,
    max_prompt_tokens,
    prompted_prefix,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.features import LogMelExtractor, frames_for
from hailo_whisper_ros.core.int8_kernels import this_cpu_int8_kernels
from hailo_whisper_ros.core.language_detection import DetectedLanguage, detect_language
from hailo_whisper_ros.core.model_dir import MODEL_INFO, TOKENIZER, ModelInfo, find_beside
from hailo_whisper_ros.core.resources import release_freed_memory
from hailo_whisper_ros.core.tokenizer import WhisperTokenizer
from hailo_whisper_ros.core.word_timing import Word, WordAligner, limit_long_words

# Whisper's decoder saw windows whose speech ends before the window does. Measured on the 61 dev clips (tiny.en, INT8
# decoder, encoder output zero-padded to 1500 positions): speech running to the end of a 10 s window makes the
# decoder repeat its last phrase (10 s path WER 8.92 % -> 8.14 % with a 1 s margin), and short windows loop outright.
# Dynamic encoder, speech + 1 s margin, window at least N frames: N = 0 65.7 %, 400 32.8 %, 500 8.14 %, 600 8.14 %
# (the 10 s path's figure, with a median encoder time of 80 instead of 102 ms); 600 keeps a frame margin of 100.
WINDOW_MARGIN_S = 1.0  # every part leaves at least this much of its encoder window to trailing silence
MIN_DYNAMIC_WINDOW_FRAMES = 600  # 6 s: the dynamic encoder's shortest window
SPLIT_SEARCH_S = 2.0  # a long clip is cut at the quietest point of the last this-many seconds of each part
WARMUP_OPTIONS = DecodingOptions(max_new_tokens=4)
# A decoder of few positions (Hailo's fixed 32-token HEF) gets parts short enough for their words at this rate: the
# most real speech needed on the 61 dev clips and 33 speech samples (max and p99.9, silence included).
SPEECH_TOKENS_PER_S = 4.1


@dataclass(frozen=True)
class Segment:
    start_s: float  # the segments' [start_s, end_s) tile the audio
    end_s: float
    window_start_s: float  # where its encoder window starts: start_s, or the speech onset (window_lead_trim_db)
    frames: int  # mel frames the encoder ran on for this segment
    text: str  # empty when judged no-speech
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float
    no_speech: bool
    stop: str  # why the kept decode ended: decoding.STOP_EOT, STOP_MAX_NEW_TOKENS, or a guard of decoding.GUARDS
    end_prob: float  # p(EOT) where the kept decode stopped (0 when a guard or the length limit stopped it)
    last_token_prob: float  # p of its last text token (0 when it has none)
    guards: tuple[str, ...] = ()  # the loop guards that fired, in order (the first decode's and its recovery's)
    recovered: bool = False  # a guard fired and the re-decode with the longest window ended at EOT: its text is kept
    words: tuple[Word, ...] = ()  # with decoding.word_timestamps: its words, in seconds of the audio transcribed
    background_removed_s: float = 0.0  # audio at its end left out of the window as background (background_trim_db)

    @property
    def looped(self) -> bool:
        """The kept decode did not end at EOT: a guard cut it (unrecovered) or it ran to max_new_tokens."""
        return self.stop != STOP_EOT


@dataclass(frozen=True)
class Timings:
    features_ms: float
    encoder_ms: float
    decoder_ms: float
    decoder_first_pass_ms: float  # of decoder_ms: the prefix passes, which also compute the cross-attention cache
    per_token_ms: float  # mean decoder step after the first pass, logit filters included
    decoder_steps: int  # those steps: one per generated token but the last, less the draft tokens verified
    total_ms: float
    language_detection_ms: float = 0.0  # of decoder_ms: the detection pass of decoding.language auto
    draft_accepted: int = 0  # generated tokens verified by a draft's pass (decoding.greedy_decode's draft)
    word_timing_ms: float = 0.0  # of decoder_ms: the alignment passes of decoding.word_timestamps (0 when off)


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    segments: tuple[Segment, ...]
    timings: Timings
    encoder_backend: str  # "hailo" or "onnx"
    decoder_backend: str
    fallback_reason: str | None  # why a configured HEF is not in use
    language: str  # the language decoded in: detected (decoding.language auto) or given (en for English-only models)
    language_prob: float  # the detector's probability of it over the language tokens; NaN when given
    context_tokens: tuple[int, ...] = ()  # the context offered to its first part (condition_on_previous)

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(t for segment in self.segments if not segment.no_speech for t in segment.tokens)

    @property
    def words(self) -> tuple[Word, ...]:
        """With decoding.word_timestamps: every word of ``text``, in seconds of the audio transcribed."""
        return tuple(word for segment in self.segments if not segment.no_speech for word in segment.words)

    @property
    def avg_logprob(self) -> float:
        """Mean over segments, weighted by their token counts (+1 for EOT, as Whisper counts)."""
        weights = [len(s.tokens) + 1 for s in self.segments]
        return float(np.average([s.avg_logprob for s in self.segments], weights=weights)) if weights else 0.0

    @property
    def no_speech_prob(self) -> float:
        """The lowest segment figure: a clip is speech-free only if every segment is."""
        return min((s.no_speech_prob for s in self.segments), default=1.0)

    @property
    def segment_count(self) -> int:
        return len(self.segments)

    @property
    def guards(self) -> tuple[str, ...]:
        """The loop guards that fired, over the segments in order."""
        return tuple(guard for segment in self.segments for guard in segment.guards)

    @property
    def loops(self) -> int:
        """Segments whose kept decode did not end at EOT."""
        return sum(segment.looped for segment in self.segments)

    @property
    def recoveries(self) -> int:
        return sum(segment.recovered for segment in self.segments)

    @property
    def background_removed_s(self) -> float:
        """Audio left out of the decode as background speech after the talker (decoding.background_trim_db)."""
        return sum(segment.background_removed_s for segment in self.segments)

    def context_after(self, context: Sequence[int], max_tokens: int) -> tuple[int, ...]:
        """The context (decoding.condition_on_previous) for what follows this result: next_context over its
        segments."""
        for segment in self.segments:
            context = next_context(context, segment, max_tokens)
        return tuple(context)


@dataclass(frozen=True)
class WindowDecode:
    window: int  # mel frames the encoder ran on
    decoded: DecodedTokens
    states: np.ndarray | None  # the encoder's output, kept for the alignment pass (decoding.word_timestamps)


def _kept_decode(decodes: list[WindowDecode]) -> WindowDecode:
    """The decode whose text a segment keeps: the recovery's if it ended at EOT, else the first one, which the guard
    already cut to its non-repeated part."""
    return decodes[-1] if decodes[-1].decoded.stop == STOP_EOT else decodes[0]


def next_context(context: Sequence[int], segment: Segment, max_tokens: int) -> tuple[int, ...]:
    """The context after ``segment``: its tokens joined to the most recent ``max_tokens``; none after a segment
    whose decode fired a loop guard, did not end at EOT or was judged no speech (a loop must not be carried on)."""
    if segment.guards or segment.looped or segment.no_speech or not segment.tokens:
        return ()
    return (*context, *segment.tokens)[-max_tokens:]


class Recognizer:
    """Loads one model set-up (RecognizerConfig) and transcribes audio with it; one call at a time."""

    def __init__(self, config: RecognizerConfig):
        self.config = config
        if config.model_dir is None or not config.model_dir.is_dir():
            raise HailoWhisperError(f"model directory not found: {config.model_dir}")
        decoder_dir = config.resolved_decoder_dir
        try:
            info_path, tokenizer_path = find_beside(decoder_dir, MODEL_INFO), find_beside(decoder_dir, TOKENIZER)
        except FileNotFoundError as error:
            raise HailoWhisperError(str(error)) from None
        try:
            # The model's dimensions and special tokens: the decoder's prompt, filters and limits come from them.
            self.info = ModelInfo.load(info_path)
        except (ValueError, TypeError, KeyError) as error:
            raise HailoWhisperError(f"cannot read {info_path}: {error}") from error
        # Token ids -> text.
        self.tokenizer = WhisperTokenizer(tokenizer_path, self.info.eot)
        # 16 kHz audio -> the log-mel frames the encoder takes.
        self.features = LogMelExtractor(self.info.n_mels)
        # Mel frames -> encoder states: ONNX on the CPU, or a HEF on the NPU (with the CPU as its fallback).
        encoder = create_encoder(config, self.info)
        self.encoder, self.encoder_backend = encoder.backend, encoder.device
        # Encoder states -> logits, a token at a time against a KV cache (or Hailo's fixed-sequence HEF).
        decoder = create_decoder(config, self.info, decoder_dir)
        self.decoder, self.decoder_backend = decoder.backend, decoder.device
        # The kernels of the INT8 MatMuls on this CPU (its flags): said with the backends, since the time per
        # token of the same model differs by them.
        self.int8_kernels = this_cpu_int8_kernels()
        # Why a configured HEF is not in use: reported with every result and in the node's diagnostics.
        reasons = [
            f"{part}: {choice.fallback_reason}" for part, choice in (("encoder", encoder), ("decoder", decoder))
            if choice.fallback_reason
        ]
        self.fallback_reason = "; ".join(reasons) if reasons else None
        self._prompt_cache: tuple[str, tuple[int, ...]] = ("", ())  # the latest initial_prompt and its tokens
        self._aligner: WordAligner | None = None  # loaded when decoding.word_timestamps is first on
        if config.warmup:
            self.warm_up()
        release_freed_memory()  # what loading parsed and copied is garbage now

    def warm_up(self) -> None:
        """One short transcription, so that the first real request is not slowed by lazy initialisation."""
        self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), WARMUP_OPTIONS)

    @property
    def max_prompt_tokens(self) -> int:
        """Prompt tokens (initial prompt and context) the decoder takes, <|startofprev|> and the forced prefix aside."""
        return max_prompt_tokens(self.decoder.max_positions)

    def initial_prompt_tokens(self, options: DecodingOptions) -> tuple[int, ...]:
        """The tokens of options.initial_prompt (with Whisper's leading space); HailoWhisperError when they leave
        the decoder too little room to decode."""
        text = options.initial_prompt.strip()
        if text != self._prompt_cache[0]:
            tokens = tuple(self.tokenizer.encode(" " + text)) if text else ()
            check_initial_prompt(tokens, self.decoder.max_positions)
            self._prompt_cache = (text, tokens)
        return self._prompt_cache[1]

    def check_options(self, options: DecodingOptions) -> None:
        """HailoWhisperError when this model cannot decode with ``options`` (a language an English-only model lacks,
        an initial prompt too long for its decoder, word timestamps from an export without the alignment pass)."""
        options.check_model(self.info)
        self.initial_prompt_tokens(options)
        if options.word_timestamps:
            self.word_aligner()

    def word_aligner(self) -> WordAligner:
        """The alignment heads' pass of decoding.word_timestamps, loaded on first use; HailoWhisperError when the
        model directory lacks it (an export older than word timings)."""
        if self._aligner is None:
            self._aligner = WordAligner.beside(self.config.resolved_decoder_dir, self.info, self.tokenizer,
                                               self.config.threads)
        return self._aligner

    def prefix(self, options: DecodingOptions, context: Sequence[int] = (), detected: str | None = None) -> list[int]:
        """The decoder's prompt for one segment: <|startofprev|>, initial prompt, context, forced prefix (with
        language auto, of the ``detected`` language)."""
        return prompted_prefix(
            options.forced_prefix(self.info, detected), self.info.sot_prev, self.initial_prompt_tokens(options),
            context, self.max_prompt_tokens,
        )

    def transcribe(
        self, audio: np.ndarray, options: DecodingOptions = DecodingOptions(), context: Sequence[int] = (),
        draft: Sequence[int] = (),
    ) -> TranscriptionResult:
        """Transcribe float32 mono 16 kHz audio of any length. ``context``: tokens of the text before it (the
        previous finals of a stream), read as prompt when options.condition_on_previous is on; then each part of a
        long clip is also prompted with the parts before it, back to a part that fired a guard or had no speech.
        ``draft``: the tokens it probably starts with (an earlier transcription of its beginning), verified exactly
        by decoding.greedy_decode; the result is the same with or without it, only cheaper when it is right. Used
        when the audio is one segment and the decoder's rows are independent (DecoderSteps.rows_independent)."""
        started = time.perf_counter()
        audio = checked_audio(audio)
        options.check_model(self.info)  # e.g. auto on an English-only model
        if options.word_timestamps:
            self.word_aligner()  # before any decode: an export without it fails at once
        task = TranscriptionTask(self, options, context)
        spans = self._parts(audio, options)
        draft = draft if len(spans) == 1 and self.decoder.rows_independent else ()
        segments = [task.decode_part(audio, begin, end, draft) for begin, end in spans]
        return task.result(segments, started)

    def _parts(self, audio: np.ndarray, options: DecodingOptions) -> list[tuple[int, int]]:
        """The [begin, end) spans the audio is decoded in, each short enough for the encoder and the decoder."""
        max_samples = self._max_part_samples(self._longest_prefix(options))
        return split_at_quiet_points(audio, max_samples, int(SPLIT_SEARCH_S * SAMPLE_RATE)) if len(audio) else []

    def _longest_prefix(self, options: DecodingOptions) -> int:
        """The most tokens prefix() gives with these options, whatever the context: the bound every part obeys. With
        language auto any language stands for the one detected later: every language's forced prefix is as long."""
        prompt = len(self.initial_prompt_tokens(options))
        if options.condition_on_previous:
            prompt = min(prompt + options.context_max_tokens, self.max_prompt_tokens)
        return len(options.forced_prefix(self.info, "en")) + (1 + prompt if prompt else 0)

    def _max_part_samples(self, prefix_tokens: int) -> int:
        """The longest part: the encoder's window less the trailing margin, and no longer than the decoder's
        positions hold at SPEECH_TOKENS_PER_S (a fixed 32-token decoder HEF: about 7 s)."""
        window = self.encoder.max_frames * HOP_LENGTH - int(WINDOW_MARGIN_S * SAMPLE_RATE)
        tokens = self.decoder.max_positions - prefix_tokens
        return min(window, int(tokens / SPEECH_TOKENS_PER_S * SAMPLE_RATE))

    def close(self) -> None:
        """Release NPU resources (each HEF shuts down and gives back its share of the process's VDevice, which goes
        with the last); CPU sessions go with the object."""
        self.encoder.close()
        self.decoder.close()


class TranscriptionTask:
    """One transcribe call, as openai/whisper's DecodingTask is one decode: what its parts share (the options, the
    logit filters, the context carried from part to part, the language detected on the first, the time spent), and
    the decode of one part."""

    def __init__(self, recognizer: Recognizer, options: DecodingOptions, context: Sequence[int]):
        self.recognizer = recognizer
        self.options = options
        self.given_context = tuple(context)[-options.context_max_tokens:] if options.condition_on_previous else ()
        self.context = self.given_context  # grows part by part (next_context)
        self.filters = build_logit_filters(options, recognizer.info)
        self.detected: DetectedLanguage | None = None  # language auto: detected on the first part
        self.spent = TimeSpent()
        self.speech_end_s = 0.0  # word timestamps: where the last word so far ended, in seconds of the audio

    def decode_part(self, audio: np.ndarray, begin: int, end: int, draft: Sequence[int]) -> Segment:
        """audio[begin:end], its encoder window starting at the speech onset (window_lead_trim_db) and, for the last
        part, ending where the talker stopped (background_trim_db)."""
        onset = begin + speech_onset(audio[begin:end], self.options.window_lead_trim_db)
        kept_end = onset + talker_end(audio[onset:end], self.options.background_trim_db) if end == len(audio) else end
        speech = self.recognizer.encoder.input_gain(audio[onset:kept_end])
        decodes = self._decodes(speech, draft)
        segment = self._segment(begin, end, onset, kept_end, decodes)
        if self.options.word_timestamps and not segment.no_speech:
            segment = self._with_words(segment, _kept_decode(decodes), len(speech))
        if self.options.condition_on_previous:
            self.context = next_context(self.context, segment, self.options.context_max_tokens)
        return segment

    def _with_words(self, segment: Segment, kept: WindowDecode, samples: int) -> Segment:
        """``segment`` with its words (decoding.word_timestamps): the alignment pass over the kept decode's encoder
        states and the ``samples`` of audio it heard, in seconds of the audio transcribed."""
        detected, options = self.detected, self.options
        language = detected.language if detected else options.language or "en"
        words, ms = self.recognizer.word_aligner().align(
            kept.states, options.forced_prefix(self.recognizer.info, language), kept.decoded.tokens,
            kept.decoded.token_probs, min(frames_for(samples), kept.window), options.pad_encoder_output_to, language)
        limit_long_words(words, self.speech_end_s - segment.window_start_s)
        found = tuple(Word(w.text.strip(), w.start + segment.window_start_s, w.end + segment.window_start_s,
                           w.probability) for w in words if w.text)
        self.spent.decoder_ms += ms
        self.spent.word_timing_ms += ms
        self.speech_end_s = found[-1].end_s if found else self.speech_end_s
        return replace(segment, words=found)

    def _decodes(self, speech: np.ndarray, draft: Sequence[int]) -> list[WindowDecode]:
        """The decodes of one part: the first decode, then, when a loop guard fired, one re-decode with the
        encoder's longest window, which recovered every loop the guards stopped on the dev set under leading
        silence (decoding.loop_recovery)."""
        # Language detection needs the encoder's longest window: on the 20 TTS clips of test/data/languages (base,
        # dynamic INT8 encoder) it found 4 of 20 languages (every one en) with the 6 s window of a short utterance,
        # 4 with 10 s, 14 with 20 s and 30 s, as faster-whisper float32 on the same weights. The first part is
        # encoded with it once and that decode reuses the states.
        longest = self.recognizer.encoder.max_frames
        detecting = self.options.detects_language and self.detected is None
        window = longest if detecting else window_frames(self.recognizer.encoder, len(speech))
        decodes = [self._decode_window(speech, window, draft)]
        if decodes[0].decoded.stop in GUARDS and self.options.loop_recovery and window != longest:
            # A recovery's longer window is not what the draft was.
            decodes.append(self._decode_window(speech, longest, ()))
        return decodes

    def _decode_window(self, speech: np.ndarray, window: int, draft: Sequence[int]) -> WindowDecode:
        """Features of ``window`` mel frames -> encoder -> (language detection) -> greedy decode; the encoder states
        kept with decoding.word_timestamps."""
        recognizer, options = self.recognizer, self.options
        started = time.perf_counter()
        mel = recognizer.features.log_mel(speech, n_frames=window)
        featured = time.perf_counter()
        states = recognizer.encoder.encode(mel)
        encoded = time.perf_counter()
        if options.detects_language and self.detected is None:
            # Once per call, on the first part's states: an utterance speaks one language, and every part then
            # decodes in it (openai/whisper's transcribe detects on its first 30 s window too).
            self.detected = detect_language(recognizer.decoder, states, recognizer.info, options)
        prefix = recognizer.prefix(options, self.context, self.detected.language if self.detected else None)
        decoded = greedy_decode(
            recognizer.decoder, states, prefix, recognizer.info, options, self.filters, len(speech) / SAMPLE_RATE,
            draft=draft,
        )
        self.spent.add(featured - started, encoded - featured, time.perf_counter() - encoded, decoded)
        return WindowDecode(window, decoded, states if options.word_timestamps else None)

    def _segment(self, begin: int, end: int, onset: int, kept_end: int, decodes: list[WindowDecode]) -> Segment:
        kept = _kept_decode(decodes)
        frames, decoded = kept.window, kept.decoded
        no_speech = self.options.is_no_speech(decoded.no_speech_prob, decoded.avg_logprob)
        return Segment(
            start_s=begin / SAMPLE_RATE,
            end_s=end / SAMPLE_RATE,
            window_start_s=onset / SAMPLE_RATE,
            frames=frames,
            text="" if no_speech else self.recognizer.tokenizer.decode(decoded.tokens).strip(),
            tokens=decoded.tokens,
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech_prob,
            no_speech=no_speech,
            stop=decoded.stop,
            end_prob=decoded.end_prob,
            last_token_prob=decoded.last_token_prob,
            guards=tuple(d.decoded.stop for d in decodes if d.decoded.stop in GUARDS),
            recovered=len(decodes) > 1 and decoded.stop == STOP_EOT,
            background_removed_s=(end - kept_end) / SAMPLE_RATE,
        )

    def result(self, segments: list[Segment], started: float) -> TranscriptionResult:
        """The call's result, ``started`` being when it began (time.perf_counter)."""
        detected, options, recognizer = self.detected, self.options, self.recognizer
        return TranscriptionResult(
            text=" ".join(s.text for s in segments if s.text),
            segments=tuple(segments),
            timings=self.spent.timings((time.perf_counter() - started) * 1e3, detected.ms if detected else 0.0),
            encoder_backend=recognizer.encoder_backend,
            decoder_backend=recognizer.decoder_backend,
            fallback_reason=recognizer.fallback_reason,
            # auto on empty audio: nothing to detect, no language
            language=detected.language if detected else "" if options.detects_language else options.language or "en",
            language_prob=detected.probability if detected else math.nan,
            context_tokens=self.given_context,
        )


@dataclass
class TimeSpent:
    """One call's time, summed over its encoder windows and decodes: what its Timings report."""

    features_ms: float = 0.0
    encoder_ms: float = 0.0
    decoder_ms: float = 0.0
    first_pass_ms: float = 0.0
    steps_ms: float = 0.0
    steps: int = 0
    draft_accepted: int = 0
    word_timing_ms: float = 0.0  # of decoder_ms

    def add(self, features_s: float, encoder_s: float, decoder_s: float, decoded: DecodedTokens) -> None:
        self.features_ms += features_s * 1e3
        self.encoder_ms += encoder_s * 1e3
        self.decoder_ms += decoder_s * 1e3
        self.first_pass_ms += decoded.first_pass_ms
        self.steps_ms += decoded.steps_ms
        self.steps += decoded.steps
        self.draft_accepted += decoded.draft_accepted

    def timings(self, total_ms: float, language_detection_ms: float) -> Timings:
        return Timings(
            features_ms=self.features_ms,
            encoder_ms=self.encoder_ms,
            decoder_ms=self.decoder_ms,
            decoder_first_pass_ms=self.first_pass_ms,
            per_token_ms=self.steps_ms / self.steps if self.steps else 0.0,
            decoder_steps=self.steps,
            draft_accepted=self.draft_accepted,
            word_timing_ms=self.word_timing_ms,
            total_ms=total_ms,
            language_detection_ms=language_detection_ms,
        )


def checked_audio(audio: np.ndarray) -> np.ndarray:
    """The samples as float32, or HailoWhisperError saying why they cannot be transcribed."""
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise HailoWhisperError(f"audio must be 1-D float samples at {SAMPLE_RATE} Hz, got {audio.dtype} {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise HailoWhisperError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def window_frames(encoder: Encoder, samples: int) -> int:
    """Mel frames to compute: the encoder's window, or for a dynamic encoder the audio's frames plus the trailing
    margin, rounded up to even and at least MIN_DYNAMIC_WINDOW_FRAMES."""
    if encoder.window_frames is not None:
        return encoder.window_frames
    frames = frames_for(samples) + int(WINDOW_MARGIN_S * SAMPLE_RATE) // HOP_LENGTH
    return min(max(frames + frames % 2, MIN_DYNAMIC_WINDOW_FRAMES), encoder.max_frames)
