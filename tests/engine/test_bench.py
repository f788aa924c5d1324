"""`visage bench` on the bundled portrait and sample clip: every stage is timed and reported
(speed targets themselves are the benchmark's printout, not a test)."""

from __future__ import annotations

from engine.evaluation.bench import format_bench, run_bench
from engine.paths import portraits_dir, sample_driving_clip


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
    assert s.landmarks_ms > 0 and s.flow_ms > 0 and s.warp_ms > 0 and s.paste_ms > 0
    assert s.warp_net_ms == s.fusion_ms == s.enhance_ms == 0.0  # the geometric path
    median_total = s.total_ms + result.decode_ms
    assert result.p99_ms >= 0.95 * median_total  # the slowest frames: not faster than the median
    assert result.fps_median == 1000.0 / median_total and result.fps_sustained > 0
    text = format_bench(result, "mona_lisa.jpg", sample_driving_clip().name)
    for row in ("| landmarks (MediaPipe + smoothing) |", "| end to end |", "99th percentile"):
        assert row in text
