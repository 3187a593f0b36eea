"""Which encoder MatMuls to quantize: the dev set's WER and encoder time of the FP32 dynamic encoder and of each
partially quantized one (export/quantize.py's ENCODER_SELECTIONS), on the clean clips and mixed with noise
(evaluation/noise.py), all run interleaved clip by clip in one process with the INT8 decoder.

    python -m hailo_whisper_ros.evaluation.encoder_choice --audio_folder ../shared/data/speech_dev \
        --conditions clean,white:20,white:10,babble:10
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.audio import load_audio
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.evaluation.datasets import list_clips
from hailo_whisper_ros.evaluation.engines import RecognizerSpec, run_interleaved
from hailo_whisper_ros.evaluation.noise import noisy_set
from hailo_whisper_ros.evaluation.stats import summarise
from hailo_whisper_ros.export.quantize import ENCODER_SELECTIONS, quantize_encoder
from hailo_whisper_ros.export.store import resolve_model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio_folder", type=Path, required=True)
    parser.add_argument("--model_dir", type=Path)
    parser.add_argument("--conditions", default="clean,white:20,white:10,babble:10",
                        help="clean, or NOISE:SNR_DB with NOISE white or babble")
    parser.add_argument("--threads", type=int, default=RecognizerConfig.threads)
    args = parser.parse_args()
    model_dir = resolve_model_dir(args.model_dir)
    clips = list_clips(args.audio_folder).clips
    audio = [load_audio(clip.audio_path) for clip in clips]
    with tempfile.TemporaryDirectory(prefix="encoder-choice-") as folder:
        encoders = {"fp32": model_dir / mf.ENCODER_DYNAMIC}
        for selection in ENCODER_SELECTIONS:
            encoders[selection] = Path(folder) / f"encoder_dynamic_{selection}.onnx"
            quantize_encoder(model_dir / mf.ENCODER_DYNAMIC, encoders[selection], selection)
        config = RecognizerConfig(model_dir=model_dir, encoder="dynamic", threads=args.threads)
        engines = [RecognizerSpec(key, key, replace(config, encoder_file=path), DecodingOptions()).create()
                   for key, path in encoders.items()]
        print(f"{len(clips)} clips of {args.audio_folder}; WER and median encoder / total ms per encoder")
        for condition in args.conditions.split(","):
            if condition == "clean":
                mixed = audio
            else:
                noise, snr = condition.split(":")
                mixed = noisy_set(audio, noise, float(snr))
            runs = run_interleaved(engines, clips, mixed)
            cells = []
            for engine, engine_runs in zip(engines, runs):
                summary = summarise(engine_runs)
                cells.append(f"{engine.label} {100 * summary.wer:.2f}% {summary.encoder_ms.median:.0f}/"
                             f"{summary.total_ms.median:.0f} ms")
            print(f"  {condition:<10} " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
