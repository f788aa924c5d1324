"""`visage bench` on the bundled portrait and sample clip: every stage is timed and reported
(speed targets themselves are the benchmark's printout, not a test)."""

from __future__ import annotations

from engine.evaluation.bench import format_bench, run_bench
from engine.paths import portraits_dir, sample_driving_clip
from engine.runtime.affinity import pinning_enabled
from engine.runtime.neural import untrained_models


def test_bench_times_every_stage_and_reports_its_stalls() -> None:
    result = run_bench(
        portraits_dir() / "mona_lisa.jpg",
        sample_driving_clip(),
        output_size=256,
        frames=12,
        warmup=3,
    )
    s = result.stages
    assert result.frames == 12
    assert result.decode_ms > 0
    assert s.landmarks_ms > 0 and s.flow_ms > 0 and s.warp_ms > 0 and s.paste_ms > 0
    assert s.warp_net_ms == s.fusion_ms == s.enhance_ms == 0.0  # the geometric path
    assert s.total_ms >= s.landmarks_ms + s.flow_ms + s.warp_ms + s.paste_ms
    # every frame's latency spans its own work on both threads, so the medians keep that order
    assert result.latency_ms >= s.total_ms
    assert result.p99_ms >= result.interval_ms  # the slowest frames: not faster than the median
    assert result.fps_median == 1000.0 / result.interval_ms and result.fps_sustained > 0
    assert not result.pinned  # no networks: nothing to split
    text = format_bench(result, "mona_lisa.jpg", sample_driving_clip().name)
    for row in ("| landmarks (MediaPipe + smoothing) |", "| end to end |", "99th percentile"):
        assert row in text
    assert "latency (median" in text


def test_bench_with_cpu_networks_splits_and_pins_the_cores_like_the_app() -> None:
    result = run_bench(
        portraits_dir() / "mona_lisa.jpg",
        sample_driving_clip(),
        output_size=256,
        frames=6,
        warmup=2,
        neural=untrained_models("cpu"),
        backend="eager",
        label="cpu tier",
    )
    assert result.frames == 6
    assert result.stages.warp_net_ms > 0 and result.stages.fusion_ms > 0
    assert result.pinned == pinning_enabled()
    assert ("half the cores each, pinned" in format_bench(result, "m", "c")) == result.pinned
