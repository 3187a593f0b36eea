"""Targets 1, 2 and 6 of `hailo-whisper bench`: the live ROS path in both layouts, and the composed process's peak
memory, each read while a wav_source plays speech to the nodes over DDS (this machine only, the test run's domain)."""

import json

from hailo_whisper_ros.cli.main import main as cli_main
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES


def test_bench_reads_the_peak_memory_of_the_composed_process(model_dir, tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    status = cli_main(["bench", "--limit", "2", "--targets", "6", "--ros_speed", "8", "--model_dir", str(model_dir),
                       "--json", str(report_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    (figure,) = json.loads(report_path.read_text())["figures"]
    assert figure["target"] == "6" and "speech_recognition" in figure["name"]
    # The process held the model: more than its weights on disk (about 70 MB for tiny.en), and its end below its peak.
    memory = json.loads(report_path.read_text())["ros_memory_mb"]
    assert figure["value"] == memory["peak"] > 70 and memory["end"] <= memory["peak"]


def test_bench_measures_the_live_ros_path_in_both_layouts_side_by_side(model_dir, tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    # A studio clip: the recording's end of speech (by energy) is within 0.1 s of where the voice stops.
    status = cli_main(["bench", "--audio_folder", str(SPEECH_SAMPLES / "ljspeech_coqui"), "--limit", "1",
                       "--targets", "1,2", "--model_dir", str(model_dir), "--json", str(report_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    report = json.loads(report_path.read_text())
    before, composed, separate = report["ros_layouts"]
    # The composed process with whole-utterance partials and no budget (as before issue 29) beside the defaults.
    assert (before["layout"], composed["layout"], separate["layout"]) == (
        "composed, before", "composed", "three processes")
    assert list(composed["peak_rss_mb"]) == list(before["peak_rss_mb"]) == ["speech_recognition"]
    assert list(separate["peak_rss_mb"]) == ["audio_subscriber", "recognizer", "transcript_publisher"]
    for layout in (before, composed, separate):
        # The clip was transcribed, partials came, and its final was timed from outside from the publication of
        # its last speech sample: after most of the VAD's 600 ms of silence.
        assert layout["wer"] < 0.5 and layout["partials"] >= 1 and layout["clips_waited_for"] == 1, layout
        assert layout["waits_p50_ms"] > 300 and 0 < layout["real_time_factor"] < 5, layout
        assert 0 < layout["partial_freshness_p95_ms"] < 5000, layout
        assert layout["peak_rss_mb"]["speech_recognition" if len(layout["peak_rss_mb"]) == 1 else "recognizer"] > 70
    # Each layout's figures are printed against the targets, and the side-by-side table names both.
    assert {figure["target"] for figure in report["figures"]} == {"1", "2a", "2b", "2c", "2d"}
    assert "composed" in out and "three processes" in out
