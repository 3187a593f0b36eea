"""`hailo-whisper pipeline`: the Pi 5 Hailo-8L study's whisper_on_hailo_pipeline.py as a command.

Its flags keep their names and meaning (``--encoder_hef_file``, ``--encoder_onnx_file`` (10 s),
``--encoder_orig_onnx_file`` (30 s), ``--decoder_onnx_dir``, ``--decoder_hef_file``, ``--audio_file``,
``--audio_folder``, ``--num_iterations``, ``--decoder_assets_path``, ``--variant``, ``--multi_process_service``), so
its command lines run unchanged apart from paths; each flag is also accepted with dashes. Without model flags the
embedded default model runs: the dynamic-length encoder and the INT8 decoders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hailo_whisper_ros.cli.flags import (
    add_decoder_hef_flags,
    add_decoding_arguments,
    add_flag,
    add_model_dir_flag,
    decoding_options,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.export.store import resolve_model_dir

HELP = "transcribe a file (timing over N runs) or evaluate a folder (WER/CER) with one encoder/decoder set-up"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model (default: the embedded model's dynamic encoder and INT8 decoders)")
    add_model_dir_flag(model)
    encoders = model.add_mutually_exclusive_group()
    add_flag(encoders, "encoder_hef_file", type=Path, metavar="HEF",
             help="encoder HEF on the Hailo NPU (10 s); falls back to the CPU 10 s ONNX encoder, saying why")
    add_flag(encoders, "encoder_onnx_file", type=Path, metavar="ONNX", help="10 s encoder ONNX on the CPU")
    add_flag(encoders, "encoder_orig_onnx_file", type=Path, metavar="ONNX",
             help="original 30 s encoder ONNX on the CPU")
    add_flag(encoders, "encoder_dynamic_onnx_file", type=Path, metavar="ONNX",
             help="dynamic-length encoder ONNX on the CPU (any clip length up to 30 s)")
    add_flag(model, "decoder_onnx_dir", type=Path, metavar="DIR",
             help="folder with decoder_model.onnx and decoder_with_past_model.onnx (default: MODEL_DIR/default_int8); "
             "its tokenizer.json and hailo_whisper_model.json are looked up in it, then in its parent")
    add_decoder_hef_flags(model)
    add_flag(model, "decoder_assets_path", type=Path, metavar="DIR",
             help="Hailo's decoder assets folder instead of --decoder_hef_token_embedding: "
             "VARIANT/decoder_tokenization/token_embedding_weight_VARIANT.npy (its onnx_add_input is left out: "
             "Hailo's decoder HEFs add the positional embedding themselves)")
    add_flag(model, "variant", default="tiny", help="subfolder of --decoder_assets_path (default: tiny)")
    add_flag(model, "multi_process_service", action="store_true",
             help="reach the NPU through hailort_service (group SHARED), so other processes can share it")

    audio = parser.add_argument_group("audio").add_mutually_exclusive_group(required=True)
    add_flag(audio, "audio_file", type=Path, metavar="FILE", help="sound file to transcribe (any rate, channels)")
    add_flag(audio, "audio_folder", type=Path, metavar="DIR",
             help="folder of clips with references: ALL.tsv, transcripts.tsv, <id>.wav|flac + <id>.txt, "
             "LibriSpeech *.trans.txt, or subfolders holding these")
    add_flag(parser, "num_iterations", type=int, default=1, metavar="N",
             help="with --audio_file: transcribe N times and print timing statistics (default: 1)")
    add_flag(parser, "limit", type=int, metavar="N", help="with --audio_folder: only the first N clips")
    add_flag(parser, "json", type=Path, metavar="FILE", help="also write every clip's and the summary's figures here")
    add_decoding_arguments(parser)


class LoopCounter:
    """A Recognizer that also keeps the loop guards of each transcription and their totals, for --json."""

    def __init__(self, recognizer):
        from hailo_whisper_ros.core.transcripts import LoopGuardTally

        self.recognizer = recognizer
        self.last_figures: dict = {}
        self.loop_guards = LoopGuardTally()

    def __getattr__(self, name):
        return getattr(self.recognizer, name)

    def transcribe(self, audio, options):
        from hailo_whisper_ros.evaluation.languages import language_figures

        result = self.recognizer.transcribe(audio, options)
        self.last_figures = {"guards": list(result.guards), "loops_recovered": result.recoveries,
                             "loops_unrecovered": result.loops, **language_figures(result)}
        if options.word_timestamps:
            from hailo_whisper_ros.evaluation.word_timings import words_as_json

            self.last_figures["words"] = words_as_json(result.words)
        self.loop_guards.add(result)
        return result

    def totals(self) -> dict:
        from hailo_whisper_ros.core.decoding import GUARDS

        return {"fired": {guard: self.loop_guards.fired[guard] for guard in GUARDS},
                "recovered": self.loop_guards.recovered, "unrecovered": self.loop_guards.unrecovered}


def recognizer_config(args: argparse.Namespace):
    """The RecognizerConfig the Pi 5 Hailo-8L study's flags describe."""
    from hailo_whisper_ros.core.config import RecognizerConfig

    encoder, encoder_file = "dynamic", None
    for flag, kind in (("encoder_hef_file", "hef"), ("encoder_onnx_file", "10s"),
                       ("encoder_orig_onnx_file", "30s"), ("encoder_dynamic_onnx_file", "dynamic")):
        if getattr(args, flag) is not None:
            encoder, encoder_file = kind, getattr(args, flag)
    token_embedding, positional_embedding = _decoder_hef_assets(args)
    # With an ONNX encoder file and a decoder folder nothing is read from the model directory, so the reference
    # study's fully explicit command lines run without an exported default model.
    fully_explicit = encoder_file is not None and encoder != "hef" and args.decoder_onnx_dir is not None
    model_dir = args.model_dir or (encoder_file.parent if fully_explicit else resolve_model_dir(None))
    return RecognizerConfig(
        model_dir,
        encoder=encoder,
        encoder_file=encoder_file,
        decoder_dir=args.decoder_onnx_dir,
        decoder_hef_file=args.decoder_hef_file,
        decoder_hef_token_embedding=token_embedding,
        decoder_hef_positional_embedding=positional_embedding,
        threads=args.threads,
        # The Pi 5 Hailo-8L study's flag: hailort_service, in the group its other models share.
        hailo_multi_process_service=args.multi_process_service,
        hailo_group_id="SHARED" if args.multi_process_service else "",
    )


def _decoder_hef_assets(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """Token and positional embedding files of the decoder HEF: the explicit flags, else Hailo's assets layout."""
    token, positional = args.decoder_hef_token_embedding, args.decoder_hef_positional_embedding
    if args.decoder_assets_path is not None:
        folder = args.decoder_assets_path / args.variant / "decoder_tokenization"
        token = token or folder / f"token_embedding_weight_{args.variant}.npy"
        # Not onnx_add_input_<variant>.npy of that folder: Hailo's published decoder HEFs add the positional
        # embedding themselves (Hailo's pipeline: add_embed=False), so adding it here would add it twice.
    if args.decoder_hef_file is not None and token is None:
        raise HailoWhisperError("--decoder_hef_file needs --decoder_hef_token_embedding or --decoder_assets_path")
    return token, positional


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.engines import RecognizerEngine
    from hailo_whisper_ros.evaluation.memory import load_recognizer

    if args.num_iterations < 1:
        raise HailoWhisperError(f"--num_iterations must be >= 1, not {args.num_iterations}")
    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    if args.audio_folder is not None and args.num_iterations > 1:
        print("warning: --num_iterations is ignored with --audio_folder", file=sys.stderr)
    options = decoding_options(args)
    # The input is read before the model is loaded, so that a wrong path fails at once.
    audio = load_audio(args.audio_file) if args.audio_file is not None else None
    folder = list_clips(args.audio_folder) if args.audio_folder is not None else None
    recognizer, memory = load_recognizer(recognizer_config(args))
    loop_counter = LoopCounter(recognizer)
    engine = RecognizerEngine("pipeline", loop_counter, options)
    config = recognizer.config
    device = {"hailo": "the Hailo NPU", "onnx": "the CPU"}
    decoder_folder = f" ({config.resolved_decoder_dir})" if recognizer.decoder_backend == "onnx" else ""
    print(f"model:    {recognizer.info.name} ({config.model_dir})")
    print(f"encoder:  {recognizer.encoder.name} on {device[recognizer.encoder_backend]}")
    print(f"decoder:  {recognizer.decoder.name}{decoder_folder} on {device[recognizer.decoder_backend]}")
    if recognizer.fallback_reason:
        print(f"fallback: Hailo HEF not used ({recognizer.fallback_reason}); running on the CPU instead")
    print(f"decoding: greedy, encoder output padded to {options.pad_encoder_output_to}, repetition penalty "
          f"{options.repetition_penalty}, EOS boost {options.eos_boost_threshold}, {config.threads} threads\n")
    report = _run_file(engine, memory, audio, args) if audio is not None else _run_folder(engine, folder, args)
    report["summary"]["configuration"] = _configuration(recognizer, options)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def _configuration(recognizer, options) -> dict:
    """The set-up that ran, for --json."""
    config = recognizer.config
    return {
        "model": recognizer.info.name,
        "model_dir": str(config.model_dir),
        "encoder": recognizer.encoder.name,
        "encoder_backend": recognizer.encoder_backend,
        "decoder": recognizer.decoder.name,
        "decoder_dir": str(config.resolved_decoder_dir),
        "decoder_backend": recognizer.decoder_backend,
        "fallback_reason": recognizer.fallback_reason,
        "threads": config.threads,
        "decoding": {
            "pad_encoder_output_to": options.pad_encoder_output_to,
            "repetition_penalty": options.repetition_penalty,
            "eos_boost_threshold": options.eos_boost_threshold,
            "language": options.language,
        },
    }


def _run_file(engine, memory, audio, args: argparse.Namespace) -> dict:
    from hailo_whisper_ros.core.constants import SAMPLE_RATE
    from hailo_whisper_ros.evaluation.engines import measure, progress
    from hailo_whisper_ros.evaluation.stats import TimingStats

    runs = [measure(engine, audio) for _ in progress(range(args.num_iterations), args.num_iterations, "iterations")]
    print("TRANSCRIPTION:")
    print(runs[-1].hypothesis)
    stage_stats = {
        stage: TimingStats.of(getattr(run, f"{stage}_ms") for run in runs) for stage in ("encoder", "decoder", "total")
    }
    print(f"\nTIMING over {args.num_iterations} run(s) of {len(audio) / SAMPLE_RATE:.2f} s of audio "
          "(total = features + encoder + decoder, the whole transcribe call)")
    for stage, stats in stage_stats.items():
        print(f"{stage.capitalize()} times (ms):")
        print("\n".join(stats.lines()))
    print("\nMEMORY (process resident set size)")
    print(f"  Encoder + decoder memory usage: {memory.load_mb:8.1f} MB (after load minus before load)")
    print(f"  Warm-up overhead:               {memory.warmup_mb:8.1f} MB")
    print(f"  Total after warm-up:            {memory.model_mb:8.1f} MB "
          f"(whole process: {memory.after_warmup_mb:.1f} MB)")
    clip = {
        "id": args.audio_file.stem,
        "duration_s": round(len(audio) / SAMPLE_RATE, 3),
        "reference": None,
        "hypothesis": runs[-1].hypothesis,
        **{f"{stage}_ms": round(stats.median, 3) for stage, stats in stage_stats.items()},
        "audio_path": str(args.audio_file),
        **engine.recognizer.last_figures,
        "iterations": [
            {"encoder_ms": run.encoder_ms, "decoder_ms": run.decoder_ms, "total_ms": run.total_ms} for run in runs
        ],
    }
    summary = {
        "iterations": args.num_iterations,
        **{f"{stage}_ms": stats.as_json() for stage, stats in stage_stats.items()},
        "loop_guards": engine.recognizer.totals(),
        "memory": {
            "before_load_mb": memory.before_load_mb,
            "after_load_mb": memory.after_load_mb,
            "after_warmup_mb": memory.after_warmup_mb,
            "load_mb": memory.load_mb,
            "warmup_mb": memory.warmup_mb,
        },
    }
    return {"clips": [clip], "summary": summary}


def _run_folder(engine, folder, args: argparse.Namespace) -> dict:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.evaluation.engines import progress, run_clip
    from hailo_whisper_ros.evaluation.stats import summarise

    clips = folder.clips[: args.limit]
    print(f"audio folder: {folder.root} ({folder.describe()})")
    if folder.unreferenced:
        print(f"warning: skipped {len(folder.unreferenced)} audio file(s) without a reference .txt, "
              f"e.g. {folder.unreferenced[0]}", file=sys.stderr)
    runs, failures, loop_figures = [], [], []
    for clip in progress(clips, len(clips), "transcribing"):
        try:
            runs.append(run_clip(engine, clip, load_audio(clip.audio_path)))
            loop_figures.append(engine.recognizer.last_figures)
        except HailoWhisperError as error:  # an unreadable file costs its clip, not the evaluation
            failures.append({"id": clip.id, "error": str(error)})
            print(f"error: {clip.id}: {error}", file=sys.stderr)
    if not runs:
        raise HailoWhisperError(f"no clip of {folder.root} could be transcribed")
    summary = summarise(runs)
    _print_clips_with_errors(runs)
    _print_summary(summary, len(runs), len(clips))
    return {
        "clips": [{**run.as_json(), **figures} for run, figures in zip(runs, loop_figures)],
        "summary": {
            "audio_folder": str(folder.root),
            "layout": folder.layout,
            "samples_processed": len(runs),
            "samples_listed": len(clips),
            "failed": failures,
            **summary.as_json(),
            "loop_guards": engine.recognizer.totals(),
        },
    }


def _print_clips_with_errors(runs) -> None:
    from hailo_whisper_ros.evaluation.scoring import normalise

    wrong = [run for run in runs if run.hallucination or (run.wer or 0.0) > 0.0]
    if wrong:
        print(f"\nCLIPS WITH ERRORS ({len(wrong)} of {len(runs)}; normalised reference / hypothesis)")
    for run in wrong:
        score = "non-speech, hallucinated" if run.hallucination else f"WER {run.wer:.1%}"
        print(f"  {run.clip.id}: {score}")
        print(f"    REF: {normalise(run.clip.reference)}")
        print(f"    HYP: {normalise(run.measurement.hypothesis)}")


def _print_summary(summary, processed: int, listed: int) -> None:
    from hailo_whisper_ros.evaluation.stats import NORMALISATION

    words, characters = summary.words, summary.characters
    print(f"\nEVALUATION SUMMARY ({summary.audio_s:.1f} s of audio; normalisation: {NORMALISATION})")
    print(f"  Samples processed:     {processed}/{listed} "
          f"({summary.speech_clips} speech, {summary.non_speech_clips} non-speech)")
    if summary.speech_clips:
        print(f"  WER (corpus):          {summary.wer:.2%}  ({words.substitutions} S + {words.deletions} D + "
              f"{words.insertions} I of {words.reference_words} reference words)")
        print(f"  CER (corpus):          {summary.cer:.2%}  ({characters.substitutions} S + {characters.deletions} D + "
              f"{characters.insertions} I of {characters.reference_characters} reference characters)")
        print(f"  Average clip WER/CER:  {summary.mean_clip_wer:.2%} / {summary.mean_clip_cer:.2%}")
    if summary.non_speech_clips:
        print(f"  Non-speech clips:      {summary.non_speech_correct} correct (empty transcript), "
              f"{summary.hallucinations} hallucinated")
    print("  Timing per clip (ms):  mean / median")
    for name, stats in (("encoder", summary.encoder_ms), ("decoder", summary.decoder_ms), ("total", summary.total_ms)):
        print(f"    Avg {name + ' time:':<14} {stats.mean:7.1f} / {stats.median:7.1f}")
    print(f"  Real-time factor:      {summary.rtfx:.1f}x faster than real time")
