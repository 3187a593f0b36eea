"""`hailo-whisper bench` measures every target and prints each figure next to it (the figures are not judged
here: they are timings of a shared machine)."""

import json
import math

from hailo_whisper_ros.cli.main import main as cli_main


def test_bench_prints_each_offline_and_streaming_target_with_its_figure(model_dir, tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    status = cli_main(["bench", "--limit", "3", "--targets", "1,2,3,4", "--model_dir", str(model_dir),
                       "--json", str(report_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    report = json.loads(report_path.read_text())
    figures = {(f["target"], f["name"]): f for f in report["figures"]}
    assert sorted({target for target, _ in figures}) == ["1", "2", "3", "4a", "4b"]
    for figure in figures.values():
        assert figure["value"] is not None and math.isfinite(figure["value"]), figure
        assert f"target {'>=' if figure['higher_is_better'] else '<='} {figure['goal']:g}" in out
    assert figures[("1", "WER ours - faster-whisper int8")]["value"] < 10.0  # both transcribe the clips
    decoder = report["decoder"]
    assert decoder["steps"] > 10 and decoder["per_token_ms"] > 0
    assert decoder["encoder_gflops"] > 0 and decoder["gemm_1024_gflops"] > 0
    captioning = report["captioning"]
    assert captioning["no partials"]["partial_segments"] <= captioning["partials every 1.0 s"]["partial_segments"]
    assert all(run["errors"] == 0 and run["audio_dropped_s"] == 0 for run in captioning.values())


def test_bench_rejects_unknown_targets(capsys):
    assert cli_main(["bench", "--targets", "1,7"]) == 2
    assert "--targets takes some of 1,2,3,4,5" in capsys.readouterr().err
