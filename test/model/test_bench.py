"""`hailo-whisper bench` measures every target and prints each figure next to it (the figures are not judged
here: they are timings of a shared machine)."""

import json
import math

from hailo_whisper_ros.cli.main import main as cli_main
from hailo_whisper_ros.evaluation.engines import ggml_model_file


def test_bench_prints_each_offline_and_streaming_target_with_its_figure(model_dir, tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    status = cli_main(["bench", "--limit", "3", "--targets", "3,4,5", "--model_dir", str(model_dir),
                       "--json", str(report_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    report = json.loads(report_path.read_text())
    figures = {(f["target"], f["name"]): f for f in report["figures"]}
    assert sorted({target for target, _ in figures}) == ["3a", "3b", "4a", "4b", "5"]
    whisper_cpp = figures[("5", "median latency per clip, whisper.cpp f16 / ours")]
    ggml_file, unavailable = ggml_model_file(model_dir)
    if ggml_file is None:  # no `export --ggml` or no pywhispercpp here: the figure says why
        assert whisper_cpp["value"] is None and unavailable in whisper_cpp["note"]
        del figures[("5", whisper_cpp["name"])]
    for figure in figures.values():
        assert figure["value"] is not None and math.isfinite(figure["value"]), figure
        assert f"target {'>=' if figure['higher_is_better'] else '<='} {figure['goal']:g}" in out
    assert figures[("5", "WER ours - faster-whisper int8")]["value"] < 10.0  # both transcribe the clips
    decoder = report["decoder"]
    assert decoder["steps"] > 10 and decoder["per_token_ms"] > 0
    # The decoder not chosen, on the same clips: the FP32 one takes as many steps (same greedy transcripts here).
    assert decoder["fp32_steps"] > 10 and decoder["fp32_per_token_ms"] > 0
    assert decoder["int8_kernels"].startswith("u8 x u8") and "FP32 decoder" in out
    assert decoder["encoder_gflops"] > 0 and decoder["gemm_1024_gflops"] > 0
    captioning = report["captioning"]
    assert captioning["no partials"]["partial_segments"] <= captioning["partials every 1.0 s"]["partial_segments"]
    assert all(run["errors"] == 0 and run["audio_dropped_s"] == 0 for run in captioning.values())


def test_bench_rejects_unknown_targets(capsys):
    assert cli_main(["bench", "--targets", "1,8"]) == 2
    assert "--targets takes some of 1,2,3,4,5,6,7, not '1,8'" in capsys.readouterr().err
