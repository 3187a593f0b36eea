"""Decoding options, logit filters, the shared greedy loop and the ONNX KV-cache decoder."""

import statistics
import time

import numpy as np
import pytest

from hailo_whisper_ros.core.backends.base import zero_pad
from hailo_whisper_ros.core.backends.onnx import OnnxKvDecoder, create_ort_session
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import (
    DRAFT_PASS_TOKENS,
    DecodingOptions,
    RepetitionPenalty,
    SuppressBlank,
    SuppressTokens,
    _log_softmax_at,
    build_logit_filters,
    choose_token,
    greedy_decode,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import (
    DECODER,
    DECODER_CROSS_KV,
    DECODER_WITH_PAST,
    ENCODER_ATTENTION_BIAS,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    MODEL_INFO,
    TOKEN_TABLE_INT8,
    TOKENIZER,
    ModelInfo,
)
from hailo_whisper_ros.core.text import normalise

# 7-8 s LJSpeech clips on which the decoder, given the 10 s encoder's 500 positions unpadded, loops on its last
# phrase (LJ001-0024 with the INT8 decoder: "..., which also was printed at mains by Peter Schulfer in the
# year 1462, which also was printed at mains ..."; LJ001-0022 with earlier exports). Padded to 1500 it stops.
LOOP_PRONE_CLIPS = ["ljspeech_coqui/LJ001-0022.flac", "ljspeech_coqui/LJ001-0024.flac"]
# Ordinary clips on which the optional guards visibly act: speeches and readings whose words come back ("ask ... ask",
# "and ... and ... and").
GUARD_CLIPS = [
    "jfk/jfk.flac",
    "librispeech_testclean_kw/1089-134686-0000.flac",
    "ljspeech_coqui/LJ001-0030.flac",
    # Ends in a full stop the EOT follows within 2 logits (with the INT8 encoder of export version 5).
    "librispeech_testclean_kw/1089-134691-0001.flac",
]


@pytest.fixture(scope="module")
def info(model_dir):
    return ModelInfo.load(model_dir / "hailo_whisper_model.json")


@pytest.mark.parametrize(
    "field, value",
    [
        ("language", ""),
        ("task", "summarise"),
        ("pad_encoder_output_to", 499),
        ("pad_encoder_output_to", 1501),
        ("pad_encoder_output_to", 700.0),
        ("repetition_penalty", 0.9),
        ("repetition_penalty", float("nan")),
        ("repetition_window", 0),
        ("eos_boost_threshold", -0.1),
        ("max_new_tokens", 0),
        ("max_new_tokens", 449),
        ("suppress_blank", 1),
        ("suppress_tokens", (1, -2)),
        ("suppress_tokens", (1, 2.5)),
        ("no_speech_threshold", 1.5),
        ("logprob_threshold", float("inf")),
    ],
)
def test_decoding_options_reject_an_invalid_value_naming_the_field(field, value):
    with pytest.raises(HailoWhisperError, match=field):
        DecodingOptions(**{field: value})


def test_english_only_model_rejects_other_languages_and_translation(info):
    assert DecodingOptions().forced_prefix(info) == [info.sot, info.no_timestamps]
    assert DecodingOptions(language="en").forced_prefix(info) == [info.sot, info.no_timestamps]
    for options in (DecodingOptions(language="de"), DecodingOptions(task="translate")):
        with pytest.raises(HailoWhisperError, match="English-only"):
            options.forced_prefix(info)


def test_no_speech_needs_both_whisper_conditions():
    options = DecodingOptions()  # p(no speech) > 0.6 and avg logprob < -1
    assert options.is_no_speech(0.7, -1.5)
    assert not options.is_no_speech(0.7, -0.5) and not options.is_no_speech(0.5, -1.5)
    assert DecodingOptions(logprob_threshold=None).is_no_speech(0.7, -0.5)
    assert not DecodingOptions(no_speech_threshold=None).is_no_speech(0.99, -5.0)


def test_repetition_penalty_lowers_recent_tokens_whatever_their_sign():
    logits = np.array([2.0, -2.0, 3.0, 1.0], dtype=np.float32)
    RepetitionPenalty(2.0, window=2).apply(logits, [3, 0, 1])  # token 3 is outside the window
    assert logits.tolist() == [1.0, -4.0, 3.0, 1.0]


def test_suppression_filters():
    eot = 5
    logits = np.zeros(9, dtype=np.float32)
    SuppressTokens([1], eot).apply(logits, [])
    assert np.isneginf(logits[[1, 6, 7, 8]]).all() and np.isfinite(logits[[0, 2, 3, 4, 5]]).all()
    blank = SuppressBlank([2, eot])
    logits = np.zeros(9, dtype=np.float32)
    blank.apply(logits, [3])  # only at the first generated position
    assert np.isfinite(logits).all()
    blank.apply(logits, [])
    assert np.isneginf(logits[[2, eot]]).all()


def test_eos_boost_picks_eot_within_the_threshold_only():
    logits = np.array([0.0, 5.0, 3.5], dtype=np.float32)  # EOT is token 2
    assert choose_token(logits, eot=2, eos_boost_threshold=0.0) == 1
    assert choose_token(logits, eot=2, eos_boost_threshold=1.0) == 1
    assert choose_token(logits, eot=2, eos_boost_threshold=1.5) == 2


class ScriptedDecoder:
    """A decoder backend whose logits favour a scripted token at each position, with token 995 the runner-up."""

    fixed_encoder_positions = None

    def __init__(self, script, n_vocab, max_positions=448):
        self.script, self.n_vocab, self.max_positions = script, n_vocab, max_positions
        self.position = 0

    def _logits(self):
        logits = np.zeros(self.n_vocab, dtype=np.float32)
        logits[995] = 5.0
        logits[self.script[min(self.position, len(self.script) - 1)]] = 10.0
        return logits

    def start(self, encoder_states, prefix, padded_positions, rows=None):
        self.position = 0
        return np.stack([self._logits()] * len(prefix if rows is None else rows))

    def step(self, token):
        self.position += 1
        return self._logits()


def test_greedy_loop_stops_at_eot_and_at_the_position_limit(info):
    options = DecodingOptions()
    filters = build_logit_filters(options, info)
    prefix = options.forced_prefix(info)
    decoded = greedy_decode(ScriptedDecoder([440, 995, info.eot], info.n_vocab), None, prefix, info, options, filters)
    assert decoded.tokens == (440, 995)
    assert decoded.steps == 2 and decoded.avg_logprob < 0
    endless = ScriptedDecoder([440], info.n_vocab, max_positions=len(prefix) + 7)
    unguarded = DecodingOptions(repetition_stop_copies=0)  # the guards have their own tests
    assert len(greedy_decode(endless, None, prefix, info, unguarded, filters).tokens) == 7
    short = DecodingOptions(max_new_tokens=3, repetition_stop_copies=0)
    assert len(greedy_decode(ScriptedDecoder([440], info.n_vocab), None, prefix, info, short, filters).tokens) == 3


def test_suppress_blank_prevents_an_immediate_eot(info):
    prefix = DecodingOptions().forced_prefix(info)
    script = [info.eot, info.eot]
    for suppress_blank, expected in ((True, (995,)), (False, ())):
        options = DecodingOptions(suppress_blank=suppress_blank)
        backend = ScriptedDecoder(script, info.n_vocab)
        decoded = greedy_decode(backend, None, prefix, info, options, build_logit_filters(options, info))
        assert decoded.tokens == expected


class DraftScript:
    """A rows-independent backend that reads a script: the logits after generated position i favour script[i]
    (token 995 the runner-up), wherever the tokens came from; it records its rewinds."""

    fixed_encoder_positions = None
    rows_independent = True
    max_positions = 448

    def __init__(self, script, n_vocab, prefix_length):
        self.script, self.n_vocab, self.prefix_length = script, n_vocab, prefix_length
        self.positions = 0
        self.rewinds = []
        self.passes = []  # the token count of each draft pass

    def _logits(self, position):
        logits = np.zeros(self.n_vocab, dtype=np.float32)
        logits[995] = 5.0
        logits[self.script[min(position - self.prefix_length, len(self.script) - 1)]] = 10.0
        return logits

    def start(self, encoder_states, tokens, padded_positions, rows=None):
        self.positions = 0
        logits = self._advance(tokens)
        return logits if rows is None else logits[rows]

    def extend(self, tokens):
        self.passes.append(len(tokens))
        return self._advance(tokens)

    def _advance(self, tokens):
        first = self.positions
        self.positions += len(tokens)
        return np.stack([self._logits(position + 1) for position in range(first, self.positions)])

    def rewind(self, positions):
        self.rewinds.append(positions)
        self.positions = positions

    def step(self, token):
        self.positions += 1
        return self._logits(self.positions)


@pytest.mark.parametrize("draft, accepted, steps, rewinds", [
    ((), 0, 4, []),
    ((440, 441, 442, 443), 4, 0, []),  # the whole transcript: one pass, no step
    ((440, 441, 7, 8, 9), 2, 2, [2 + 2]),  # wrong from its third token: the cache is cut back after two
    ((300,), 0, 4, []),  # wrong from its first token: no draft pass, so nothing to cut back
    ((440, 7), 1, 3, [2 + 1]),
    ((440, 441), 2, 2, []),  # right but short: greedy goes on from its end without a rewind
])
def test_a_draft_saves_steps_and_changes_no_token(info, draft, accepted, steps, rewinds):
    options = DecodingOptions(repetition_stop_copies=0)
    prefix = options.forced_prefix(info)
    assert len(prefix) == 2
    backend = DraftScript([440, 441, 442, 443, info.eot], info.n_vocab, len(prefix))
    decoded = greedy_decode(backend, None, prefix, info, options, build_logit_filters(options, info), draft=draft)
    assert decoded.tokens == (440, 441, 442, 443) and decoded.stop == "eot"
    assert (decoded.draft_accepted, decoded.steps, backend.rewinds) == (accepted, steps, rewinds)


def test_a_long_draft_is_verified_a_pass_of_draft_pass_tokens_at_a_time(info):
    """A pass only once the tokens of the one before were all kept, so a draft wrong early wastes one pass."""
    options = DecodingOptions(repetition_stop_copies=0)
    prefix = options.forced_prefix(info)
    script = list(range(440, 440 + DRAFT_PASS_TOKENS + 4))
    backend = DraftScript([*script, info.eot], info.n_vocab, len(prefix))
    draft = script[: DRAFT_PASS_TOKENS + 2] + [7]  # right but for its last token
    decoded = greedy_decode(backend, None, prefix, info, options, build_logit_filters(options, info), draft=draft)
    assert decoded.tokens == tuple(script)
    assert backend.passes == [DRAFT_PASS_TOKENS, 3] and decoded.draft_accepted == DRAFT_PASS_TOKENS + 2
    assert backend.rewinds == [len(prefix) + DRAFT_PASS_TOKENS + 2] and decoded.steps == 2


def test_a_pass_over_several_tokens_gives_the_logits_of_one_token_steps(recognizer, sample_audio):
    """What lets a draft be verified exactly: the INT8 step decoder computes each token row on its own, bit for bit,
    on real speech and a transcript of dozens of tokens. Before the self-attention ran over all n_text_ctx positions
    (export/graphs.attend), a pass's row summed its values over more (masked) keys than its step had, in another
    order: here rows 7 on differed by up to 2e-5, so a near-tie could make a draft change a token."""
    audio = sample_audio("ljspeech_coqui/LJ001-0001.flac")
    (segment,) = recognizer.transcribe(audio).segments
    window = audio[round(segment.window_start_s * SAMPLE_RATE):]
    states = recognizer.encoder.encode(recognizer.features.log_mel(window, n_frames=segment.frames))
    decoder, options = recognizer.decoder, DecodingOptions()
    prefix = options.forced_prefix(recognizer.info)
    tokens = prefix + list(segment.tokens)
    assert decoder.rows_independent and len(tokens) > 30
    stepped = [decoder.start(states, prefix, options.pad_encoder_output_to)[-1].copy()]
    stepped += [decoder.step(token).copy() for token in tokens[len(prefix):-1]]
    decoder.start(states, prefix, options.pad_encoder_output_to)
    in_one_pass = decoder.extend(tokens[len(prefix):-1])
    differences = np.abs(np.stack(stepped[1:]) - in_one_pass).max(axis=1)
    assert not differences.any(), (
        f"rows {np.flatnonzero(differences) + len(prefix) + 1} differ, by up to {differences.max()}"
    )


def test_the_prefix_pass_projects_only_the_rows_asked_for_bit_for_bit(model_dir, info):
    """The INT8 step decoder projects only logit_rows (the SOT's and the last in a prefix pass): their logits are
    exactly those of the projection of every row, whose activation range is still taken over all rows, and the
    steps after it are those after a pass that projected every row."""
    states = np.random.default_rng(3).standard_normal((1, 300, info.n_text_state)).astype(np.float32)
    prefix = [info.sot_prev, *range(440, 460), info.sot, info.no_timestamps]
    decoder = OnnxKvDecoder(model_dir / "default_int8", info, threads=2)
    assert decoder._projects_rows
    every_row = decoder.start(states, prefix, 1500)
    after_every_row = decoder.step(995).copy()
    rows = [prefix.index(info.sot), len(prefix) - 1]
    two_rows = decoder.start(states, prefix, 1500, rows=rows)
    assert every_row.shape == (len(prefix), info.n_vocab) and two_rows.shape == (2, info.n_vocab)
    np.testing.assert_array_equal(two_rows, every_row[rows])
    np.testing.assert_array_equal(decoder.step(995), after_every_row)


def test_kv_cache_steps_give_the_logits_of_a_full_sequence_pass(model_dir, info):
    """The cached decoder must compute what decoder_model.onnx computes over the whole sequence at once."""
    states = np.random.default_rng(0).standard_normal((1, 1500, info.n_text_state)).astype(np.float32)
    tokens = [info.sot, info.no_timestamps, 440, 995, 11, 318]
    decoder = OnnxKvDecoder(model_dir, info, threads=2)
    cached = [decoder.start(states, tokens[:2], 1500)[-1]] + [decoder.step(t) for t in tokens[2:]]
    full = create_ort_session(model_dir / DECODER, 2)
    no_bias = {ENCODER_ATTENTION_BIAS: np.zeros(1500, np.float32)}
    (logits,) = full.run(["logits"], {INPUT_IDS: np.asarray([tokens]), ENCODER_HIDDEN_STATES: states, **no_bias})
    np.testing.assert_allclose(np.stack(cached), logits[0, 1:], rtol=0, atol=2e-3)


@pytest.mark.parametrize("decoder_dir", ["", "default_int8"])
def test_padding_by_attention_bias_equals_zero_padding(model_dir, info, decoder_dir):
    """One zero position raised by log(count) must stand in exactly for the zero rows it replaces, in the first
    pass and in the steps."""
    states = np.random.default_rng(1).standard_normal((1, 500, info.n_text_state)).astype(np.float32)
    tokens = [info.sot, info.no_timestamps, 440, 995, 11]
    decoder = OnnxKvDecoder(model_dir / decoder_dir, info, threads=2)
    assert decoder.pads_by_bias
    runs = []
    for given in (states, zero_pad(states, 1500)):
        runs.append([decoder.start(given, tokens[:2], 1500)[-1]] + [decoder.step(t) for t in tokens[2:]])
        runs[-1].append(decoder._feeds["past_key_values.0.encoder.key"].shape[2])
    assert (runs[0].pop(), runs[1].pop()) == (501, 1500)
    biased, zeros = np.stack(runs[0]), np.stack(runs[1])
    if decoder_dir:
        # INT8: each MatMul quantizes its input with a range taken from the values, so float rounding differences
        # of the two sums can move a value across a quantization step. Same choices, differences at that scale.
        assert (biased.argmax(-1) == zeros.argmax(-1)).all()
        np.testing.assert_allclose(biased, zeros, rtol=0, atol=0.5)
    else:
        np.testing.assert_allclose(biased, zeros, rtol=0, atol=2e-3)


@pytest.mark.parametrize("decoder_dir", ["", "default_int8"])
def test_starting_from_the_cross_kv_graph_equals_the_prefix_decoder(model_dir, info, decoder_dir, tmp_path):
    """Ours (cross-attention cache graph + the step decoder from an empty cache) against Optimum's way (the prefix
    decoder), the same decoder files otherwise: a folder beside no decoder_cross_kv.onnx gets the latter."""
    optimum_style = tmp_path / "decoders"
    optimum_style.mkdir()
    for name in (DECODER, DECODER_WITH_PAST, TOKENIZER, MODEL_INFO) + ((TOKEN_TABLE_INT8,) if decoder_dir else ()):
        (optimum_style / name).symlink_to(model_dir / decoder_dir / name)
    ours, optimum = OnnxKvDecoder(model_dir / decoder_dir, info, 2), OnnxKvDecoder(optimum_style, info, 2)
    assert (ours.start_file, optimum.start_file) == (DECODER_CROSS_KV, DECODER)
    states = np.random.default_rng(2).standard_normal((1, 300, info.n_text_state)).astype(np.float32)
    tokens = [info.sot, info.no_timestamps, 440, 995, 11]
    runs = []
    for decoder in (ours, optimum):
        prefix_logits = decoder.start(states, tokens[:2], 1500)
        runs.append(np.concatenate([prefix_logits, np.stack([decoder.step(t) for t in tokens[2:]])]))
    if decoder_dir:  # INT8: activations quantized per call (see the test above)
        assert (runs[0].argmax(-1) == runs[1].argmax(-1)).all()
        np.testing.assert_allclose(runs[0], runs[1], rtol=0, atol=0.5)
    else:
        np.testing.assert_allclose(runs[0], runs[1], rtol=0, atol=2e-3)


def test_kv_cache_step_work_stays_flat_as_the_sequence_grows(model_dir, info):
    """Step cost at position ~5 vs ~100: the cache makes it (nearly) constant, where re-running the sequence
    grows linearly. Measured as process CPU time with one thread, so other load on the machine matters less."""
    decoder = OnnxKvDecoder(model_dir / "default_int8", info, threads=1)
    states = np.zeros((1, 1500, info.n_text_state), dtype=np.float32)
    decoder.start(states, [info.sot, info.no_timestamps], 1500)
    cpu_ms = []
    for position in range(2, 110):
        started = time.process_time()
        decoder.step(440 + position)
        cpu_ms.append((time.process_time() - started) * 1e3)
    early, late = statistics.median(cpu_ms[1:12]), statistics.median(cpu_ms[95:106])
    print(f"\nINT8 KV decoder step, CPU ms (1 thread): position ~5: {early:.2f}, position ~100: {late:.2f}")
    assert late < 1.5 * early


def loops(text: str) -> bool:
    """Whether some five-word phrase comes twice: natural sentences of a few seconds never do that."""
    words = normalise(text).split()
    phrases = [tuple(words[i : i + 5]) for i in range(len(words) - 4)]
    return len(set(phrases)) < len(phrases)


# These tests look at the decoder's own behaviour and its optional knobs: without the loop guards of issue 13 and
# with windows starting where the audio does (test_segmentation_variants tests those).
AS_BEFORE_LOOP_GUARDS = dict(window_lead_trim_db=0.0, max_tokens_per_s=0.0, repetition_stop_copies=0,
                             loop_recovery=False)


def transcripts(recognizer, sample_audio, clips, **options):
    options = DecodingOptions(**{**AS_BEFORE_LOOP_GUARDS, **options})
    return [recognizer.transcribe(sample_audio(clip), options) for clip in clips]


def test_padding_the_encoder_output_stops_the_repetition_loops(recognizer, sample_audio):
    unpadded = transcripts(recognizer, sample_audio, LOOP_PRONE_CLIPS, pad_encoder_output_to=500)
    padded = transcripts(recognizer, sample_audio, LOOP_PRONE_CLIPS, pad_encoder_output_to=1500)
    for clip, short, full in zip(LOOP_PRONE_CLIPS, unpadded, padded):
        print(f"\n{clip}\n  pad 500:  {len(short.tokens)} tokens: {short.text}")
        print(f"  pad 1500: {len(full.tokens)} tokens: {full.text}")
    assert any(loops(result.text) for result in unpadded)
    assert not any(loops(result.text) for result in padded)


@pytest.mark.parametrize("guard", [{"repetition_penalty": 1.1}, {"eos_boost_threshold": 2.0}])
def test_repetition_guards_stop_the_loops_without_padding(recognizer, sample_audio, guard):
    unpadded = transcripts(recognizer, sample_audio, LOOP_PRONE_CLIPS, pad_encoder_output_to=500)
    guarded = transcripts(recognizer, sample_audio, LOOP_PRONE_CLIPS, pad_encoder_output_to=500, **guard)
    for clip, plain, result in zip(LOOP_PRONE_CLIPS, unpadded, guarded):
        print(f"\n{clip} pad 500: {len(plain.tokens)} tokens; + {guard}: {len(result.tokens)} tokens: {result.text}")
    assert any(loops(result.text) for result in unpadded)
    assert not any(loops(result.text) for result in guarded)


def test_repetition_penalty_and_eos_boost_change_ordinary_decodings(recognizer, sample_audio):
    """Without any loop the guards still act: the penalty changes close choices, the boost ends segments earlier
    (an EOT within 2 logits of a final full stop wins)."""
    plain = transcripts(recognizer, sample_audio, GUARD_CLIPS)
    penalised = transcripts(recognizer, sample_audio, GUARD_CLIPS, repetition_penalty=1.1)
    boosted = transcripts(recognizer, sample_audio, GUARD_CLIPS, eos_boost_threshold=2.0)
    for clip, a, b, c in zip(GUARD_CLIPS, plain, penalised, boosted):
        print(f"\n{clip}\n  plain:     {a.text}\n  penalised: {b.text}\n  boosted:   {c.text}")
    assert any(b.tokens != a.tokens for a, b in zip(plain, penalised))
    assert all(len(c.tokens) <= len(a.tokens) for a, c in zip(plain, boosted))
    assert any(len(c.tokens) < len(a.tokens) for a, c in zip(plain, boosted))


def test_the_log_softmax_in_a_reused_row_is_bit_for_bit_the_fresh_one(recognizer, sample_audio):
    """_main_loop works the log-softmax of every step in one scratch row instead of fresh arrays: the token
    probabilities (avg_logprob, p(EOT), the last token's) must stay exactly what they were, on real logits."""
    audio = sample_audio("ljspeech_coqui/LJ001-0001.flac")
    (segment,) = recognizer.transcribe(audio).segments
    window = audio[round(segment.window_start_s * SAMPLE_RATE):]
    states = recognizer.encoder.encode(recognizer.features.log_mel(window, n_frames=segment.frames))
    options = DecodingOptions()
    prefix = options.forced_prefix(recognizer.info)
    filters = build_logit_filters(options, recognizer.info)
    rows = [recognizer.decoder.start(states, prefix, options.pad_encoder_output_to)[-1].copy()]
    rows += [recognizer.decoder.step(token).copy() for token in segment.tokens[:20]]
    scratch = np.empty_like(rows[0])
    for generated, logits in enumerate(rows):
        for logit_filter in filters:
            logit_filter.apply(logits, segment.tokens[:generated])
        peak = logits.max()
        for index in (int(np.argmax(logits)), recognizer.info.eot, 11):
            fresh = float(logits[index] - peak - np.log(np.exp(logits - peak).sum()))
            assert _log_softmax_at(logits, index, scratch) == fresh
