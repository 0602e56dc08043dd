import os

import pytest

from bench.resources import Sample, Sampler, rss_growth_pct, summarise

MB = 2**20


def test_summary_is_over_the_load_window() -> None:
    samples = [Sample(0, 0, 10 * MB), Sample(1, 50, 20 * MB), Sample(2, 100, 30 * MB), Sample(3, 0, 90 * MB)]
    usage = summarise(samples, 1, 2)
    assert usage is not None
    assert (usage.cpu_avg_pct, usage.cpu_max_pct) == (75, 100)
    assert (usage.rss_start_mb, usage.rss_end_mb, usage.rss_max_mb) == (20, 30, 30)
    assert summarise([], 0, 1) is None


def test_rss_growth_compares_medians_after_warm_up_with_the_end() -> None:
    flat = [Sample(t, 0, 100 * MB + (MB if t % 10 == 0 else 0)) for t in range(0, 600)]
    assert rss_growth_pct(flat, warmup_s=60) == pytest.approx(0)
    leaking = [Sample(t, 0, (100 + t // 10) * MB) for t in range(0, 600)]
    growth = rss_growth_pct(leaking, warmup_s=60)
    assert growth == pytest.approx(
        (158 - 107) / 107 * 100
    )  # medians: 107 MB after warm-up, 158 MB at the end
    assert rss_growth_pct(leaking[:50], warmup_s=60) is None  # the run ended inside the warm-up


def test_the_sampler_reads_a_real_process() -> None:
    sampler = Sampler([])
    sampler.add("self", os.getpid())
    sampler.add("nobody", None)
    sampler.sample_once()
    sampler.sample_once()
    assert list(sampler.samples) == ["self"]
    assert sampler.samples["self"][-1].rss_bytes > 10 * MB
