"""`pipeline` and `compare` on small folders built from the shipped speech samples, and the folder layouts they
read."""

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from hailo_whisper_ros.cli import main as cli
from hailo_whisper_ros.evaluation.datasets import detect_layout, list_clips
from hailo_whisper_ros.evaluation.scoring import normalise

# Two short shipped clips that the default set-up (dynamic encoder, INT8 decoders) transcribes word for word; the
# tests check that first, so a model change shows up as such and not as a scoring bug.
WAIT = "librispeech_testclean_kw/1089-134691-0000.flac"
WAIT_TEXT = "He could wait no longer."  # 5 words, 23 characters normalised
MODERN = "ljspeech_coqui/LJ001-0002.flac"
MODERN_TEXT = "in being comparatively modern"
# The reference written for MODERN with one word deliberately wrong: 4 words, 30 characters normalised.
MODERN_WRONG_REFERENCE = "In being comparatively ancient."
# By hand: one substituted word of 5 + 4 reference words. Characters: "ancient" -> "modern" is a-m, n-o, c-d,
# i deleted, e kept, n-r, t-n: 5 substitutions + 1 deletion of 23 + 30 reference characters.
EXPECTED_WER = 1 / 9
EXPECTED_CER = 6 / 53

CLIP_FIELDS = {"id", "duration_s", "reference", "hypothesis", "encoder_ms", "decoder_ms", "total_ms"}


@pytest.fixture
def samples(speech_samples: Path) -> SimpleNamespace:
    """The two speech clips."""
    return SimpleNamespace(wait=speech_samples / WAIT, modern=speech_samples / MODERN)


def write_silence(path: Path, seconds: float = 3.0) -> None:
    soundfile.write(path, np.zeros(int(seconds * 16000), dtype=np.float32), 16000)


def build_txt_pairs(folder: Path, samples: SimpleNamespace) -> Path:
    """The Pi 5 Hailo-8L study's layout: <id>.wav|flac with <id>.txt; one wrong reference word, one silent clip."""
    folder.mkdir(parents=True)
    shutil.copy(samples.wait, folder / "wait.flac")
    (folder / "wait.txt").write_text(WAIT_TEXT + "\n")
    shutil.copy(samples.modern, folder / "modern.flac")
    (folder / "modern.txt").write_text(MODERN_WRONG_REFERENCE + "\n")
    write_silence(folder / "silence.wav")
    (folder / "silence.txt").write_text("")
    return folder


def build_transcripts_tsv(folder: Path, samples: SimpleNamespace) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(samples.wait, folder / "wait.flac")
    write_silence(folder / "silence.wav")
    (folder / "transcripts.tsv").write_text(f"wait\t{WAIT_TEXT}\nsilence\t\n")
    return folder


def build_all_tsv(folder: Path, samples: SimpleNamespace) -> Path:
    (folder / "set").mkdir(parents=True)
    shutil.copy(samples.wait, folder / "set" / "wait.flac")
    shutil.copy(samples.modern, folder / "set" / "modern.flac")
    (folder / "ALL.tsv").write_text(
        f"path\tduration_s\treference\nset/wait.flac\t2.085\t{WAIT_TEXT}\nset/modern.flac\t1.900\t{MODERN_TEXT}\n"
    )
    return folder


def build_librispeech(folder: Path, samples: SimpleNamespace) -> Path:
    chapter = folder / "test-clean" / "1089" / "134691"
    chapter.mkdir(parents=True)
    shutil.copy(samples.wait, chapter / samples.wait.name)
    (chapter / "1089-134691.trans.txt").write_text("1089-134691-0000 HE COULD WAIT NO LONGER\n")
    return folder


def build_set_folders(folder: Path, samples: SimpleNamespace) -> Path:
    build_transcripts_tsv(folder / "a_tsv", samples)
    build_txt_pairs(folder / "b_pairs", samples)
    return folder


def run_pipeline(capsys, *argv) -> str:
    """`hailo-whisper pipeline ARGV` in this process; returns what it printed."""
    assert cli.main(["pipeline", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "build, layout, expected",
    [
        (build_txt_pairs, "txt-pairs",
         {"modern": MODERN_WRONG_REFERENCE, "silence": "", "wait": WAIT_TEXT}),
        (build_transcripts_tsv, "transcripts.tsv", {"wait": WAIT_TEXT, "silence": ""}),
        (build_all_tsv, "ALL.tsv", {"set/wait": WAIT_TEXT, "set/modern": MODERN_TEXT}),
        (build_librispeech, "set-folders", {"test-clean/1089/134691/1089-134691-0000": "HE COULD WAIT NO LONGER"}),
        (build_set_folders, "set-folders",
         {"a_tsv/wait": WAIT_TEXT, "a_tsv/silence": "", "b_pairs/modern": MODERN_WRONG_REFERENCE,
          "b_pairs/silence": "", "b_pairs/wait": WAIT_TEXT}),
    ],
)
def test_each_folder_layout_is_detected_and_listed(tmp_path, samples, build, layout, expected):
    folder = build(tmp_path / "clips", samples)
    assert detect_layout(folder) == layout
    listing = list_clips(folder)
    assert listing.layout == layout
    assert {clip.id: clip.reference for clip in listing.clips} == expected
    assert all(clip.audio_path.is_file() for clip in listing.clips)


def test_librispeech_chapters_are_found_recursively(tmp_path, samples):
    root = build_librispeech(tmp_path / "LibriSpeech", samples)
    chapter = root / "test-clean" / "1089" / "134691"
    assert detect_layout(chapter) == "librispeech"
    assert list_clips(root).set_layouts == ("librispeech",)


def test_audio_without_a_reference_is_reported_not_scored(tmp_path, samples):
    folder = build_txt_pairs(tmp_path / "clips", samples)
    write_silence(folder / "stray.wav")
    listing = list_clips(folder)
    assert "stray" not in {clip.id for clip in listing.clips}
    assert listing.unreferenced == (folder / "stray.wav",)


def test_a_folder_without_references_is_a_one_line_error(tmp_path, capsys):
    write_silence(tmp_path / "lonely.wav")
    assert cli.main(["pipeline", "--audio_folder", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hailo-whisper pipeline: error: no clips with references") and "\n" not in error


@pytest.mark.usefixtures("model_dir")  # transcribes with the default model
def test_pipeline_folder_scores_a_known_wrong_word_and_a_silent_clip(tmp_path, samples, capsys):
    folder = build_txt_pairs(tmp_path / "clips", samples)
    report_path = tmp_path / "report.json"
    out = run_pipeline(capsys, "--audio_folder", str(folder), "--json", str(report_path))

    report = json.loads(report_path.read_text())
    clips = {clip["id"]: clip for clip in report["clips"]}
    assert all(CLIP_FIELDS <= set(clip) for clip in report["clips"])
    # Preconditions: the model hears both speech clips word for word and nothing in the silence.
    assert normalise(clips["wait"]["hypothesis"]) == normalise(WAIT_TEXT)
    assert normalise(clips["modern"]["hypothesis"]) == normalise(MODERN_TEXT)
    assert clips["silence"]["hypothesis"] == ""

    summary = report["summary"]
    assert summary["wer"] == pytest.approx(EXPECTED_WER)
    assert summary["cer"] == pytest.approx(EXPECTED_CER)
    assert summary["word_errors"] == {"substitutions": 1, "deletions": 0, "insertions": 0, "reference_words": 9}
    assert clips["modern"]["wer"] == pytest.approx(1 / 4)
    assert clips["wait"]["wer"] == 0.0
    assert clips["silence"]["wer"] is None and clips["silence"]["non_speech"] and not clips["silence"]["hallucination"]
    assert (summary["speech_clips"], summary["non_speech_clips"]) == (2, 1)
    assert (summary["non_speech_correct"], summary["hallucinations"]) == (1, 0)
    for clip in report["clips"]:
        assert 0 < clip["encoder_ms"] and 0 < clip["decoder_ms"]
        assert clip["encoder_ms"] + clip["decoder_ms"] <= clip["total_ms"]

    assert re.search(r"Samples processed:\s+3/3 \(2 speech, 1 non-speech\)", out)
    wer = float(re.search(r"WER \(corpus\):\s+([\d.]+)%", out).group(1))
    cer = float(re.search(r"CER \(corpus\):\s+([\d.]+)%", out).group(1))
    assert wer == pytest.approx(100 * EXPECTED_WER, abs=0.005)
    assert cer == pytest.approx(100 * EXPECTED_CER, abs=0.005)
    assert re.search(r"Non-speech clips:\s+1 correct \(empty transcript\), 0 hallucinated", out)
    assert "lower case, punctuation removed, whitespace folded" in out
    mean_total = float(re.search(r"Avg total time:\s+([\d.]+) /", out).group(1))
    assert mean_total == pytest.approx(np.mean([clip["total_ms"] for clip in report["clips"]]), abs=0.1)


@pytest.mark.usefixtures("model_dir")  # transcribes with the default model
def test_pipeline_audio_file_prints_timing_statistics_and_memory(tmp_path, samples, capsys):
    report_path = tmp_path / "file.json"
    out = run_pipeline(capsys, "--audio_file", str(samples.wait), "--num_iterations", "3", "--json", str(report_path),
                       "--word_timestamps")

    transcript = out.split("TRANSCRIPTION:\n", 1)[1].splitlines()[0]
    assert normalise(transcript) == normalise(WAIT_TEXT)
    for stage in ("Encoder", "Decoder", "Total"):
        block = out.split(f"{stage} times (ms):\n", 1)[1]
        mean, std = map(float, re.match(r"  Mean: ([\d.]+) ± ([\d.]+)\n", block).groups())
        low, high = map(float, re.search(r"  Min/Max: ([\d.]+) / ([\d.]+)\n", block).groups())
        median = float(re.search(r"  Median: ([\d.]+)", block).group(1))
        assert 0 < low <= median <= high and low <= mean <= high and std >= 0
    load = float(re.search(r"Encoder \+ decoder memory usage:\s+([\d.]+) MB", out).group(1))
    warmup = float(re.search(r"Warm-up overhead:\s+(-?[\d.]+) MB", out).group(1))
    total = float(re.search(r"Total after warm-up:\s+([\d.]+) MB", out).group(1))
    assert load > 50 and total == pytest.approx(load + warmup, abs=0.11)

    report = json.loads(report_path.read_text())
    (clip,) = report["clips"]
    assert CLIP_FIELDS <= set(clip) and len(clip["iterations"]) == 3
    assert (clip["language"], clip["language_prob"]) == ("en", None)  # tiny.en: given, not detected
    assert normalise(" ".join(word["text"] for word in clip["words"])) == normalise(clip["hypothesis"])
    assert all(0 <= w["start_s"] <= w["end_s"] <= clip["duration_s"] and 0 < w["probability"] <= 1
               for w in clip["words"])
    assert report["summary"]["total_ms"]["count"] == 3


def test_reference_study_flags_map_to_the_recognizer_config(model_dir, monkeypatch):
    from hailo_whisper_ros.cli.pipeline import recognizer_config
    from hailo_whisper_ros.export.store import MODEL_DIR_ENV

    monkeypatch.setenv(MODEL_DIR_ENV, str(model_dir))  # the default model, wherever the run's environment puts it

    def config(*flags):
        return recognizer_config(cli.build_parser().parse_args(["pipeline", "--audio_file", "x.wav", *flags]))

    default = config()
    assert (default.encoder, default.encoder_file, default.resolved_decoder_dir) == (
        "dynamic", None, model_dir / "default_int8"
    )
    assert config("--encoder_onnx_file", "e10.onnx").encoder == "10s"
    assert config("--encoder_orig_onnx_file", "e30.onnx").encoder == "30s"
    assert config("--encoder-dynamic-onnx-file", "ed.onnx").encoder == "dynamic"
    explicit = config("--encoder_orig_onnx_file", "m/e30.onnx", "--decoder_onnx_dir", "m/dec")
    assert (explicit.encoder_file, explicit.decoder_dir, explicit.model_dir) == (
        Path("m/e30.onnx"), Path("m/dec"), Path("m")
    )
    hef = config("--encoder_hef_file", "enc.hef", "--decoder_hef_file", "dec.hef", "--decoder_assets_path", "assets")
    assert (hef.encoder, hef.encoder_file, hef.decoder_hef_file) == ("hef", Path("enc.hef"), Path("dec.hef"))
    assert hef.decoder_hef_token_embedding == Path("assets/tiny/decoder_tokenization/token_embedding_weight_tiny.npy")


def test_decoder_hef_without_its_embedding_is_a_one_line_error(samples, capsys):
    assert cli.main(["pipeline", "--audio_file", str(samples.wait), "--decoder_hef_file", "dec.hef"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hailo-whisper pipeline: error: --decoder_hef_file needs --decoder_hef_token_embedding or --decoder_assets_path"
    )


@pytest.mark.usefixtures("model_dir")  # transcribes with the default model
def test_encoder_hef_without_a_device_falls_back_to_the_cpu_and_says_why(tmp_path, samples, capsys):
    hef = tmp_path / "encoder.hef"
    hef.write_bytes(b"not a real HEF")
    out = run_pipeline(capsys, "--encoder_hef_file", str(hef), "--audio_file", str(samples.wait))
    assert re.search(r"^fallback: Hailo HEF not used \(.+\); running on the CPU instead$", out, re.M)
    assert "encoder:  onnx:encoder_10s.onnx on the CPU" in out
    assert normalise(out.split("TRANSCRIPTION:\n", 1)[1].splitlines()[0]) == normalise(WAIT_TEXT)


@pytest.mark.usefixtures("model_dir")  # transcribes with the default model
def test_compare_smoke_writes_table_json_and_plot_with_speed_ratios(tmp_path, samples, capsys):
    folder = build_txt_pairs(tmp_path / "clips", samples)
    out_dir = tmp_path / "compare"
    assert cli.main(["compare", "--audio_folder", str(folder), "--limit", "2", "--configs", "10s-int8,fw-int8",
                     "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out

    report = json.loads((out_dir / "compare.json").read_text())
    configs = {config["key"]: config for config in report["configurations"]}
    assert list(configs) == ["10s-int8", "fw-int8"] and report["clips"] == 2
    fw_median = configs["fw-int8"]["summary"]["total_ms"]["median"]
    ours = configs["10s-int8"]
    assert configs["fw-int8"]["speed_vs_faster_whisper_int8"] == pytest.approx(1.0)
    # The medians are stored rounded.
    assert ours["speed_vs_faster_whisper_int8"] == pytest.approx(
        fw_median / ours["summary"]["total_ms"]["median"], rel=1e-3
    )
    assert configs["fw-int8"]["summary"]["encoder_ms"] is None
    for config in configs.values():
        assert config["peak_memory"]["peak_rss_mb"] > config["peak_memory"]["base_rss_mb"] > 0
        assert len(config["clips"]) == 2 and all(CLIP_FIELDS <= set(clip) for clip in config["clips"])

    table = (out_dir / "compare.md").read_text()
    header = ("| Configuration | WER | CER | Encoder ms | Decoder ms | Total ms | Peak memory MB "
              "| Speed vs faster-whisper int8 | Speed vs whisper.cpp |")
    assert table.startswith(header) and table in printed
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 2 and rows[1].rstrip().endswith("| 1.00× | – |")  # whisper.cpp not asked for
    assert all(config["speed_vs_whisper_cpp"] is None for config in configs.values())
    assert (out_dir / "compare.png").read_bytes().startswith(b"\x89PNG")


def test_compare_rejects_an_unknown_configuration(tmp_path, samples, capsys):
    folder = build_txt_pairs(tmp_path / "clips", samples)
    args = ["compare", "--audio_folder", str(folder), "--configs", "10s-int8,nope", "--out", str(tmp_path)]
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert "unknown configuration(s) nope" in error and "fw-int8" in error
