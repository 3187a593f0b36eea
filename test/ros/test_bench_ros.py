"""Target 6 of `hailo-whisper bench`: the composed ROS process's peak memory, read while a wav_source plays speech to
it over DDS (this machine only, the test run's domain)."""

import json

from hailo_whisper_ros.cli.main import main as cli_main


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
