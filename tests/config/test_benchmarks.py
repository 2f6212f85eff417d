from config.benchmarks import percentile, settings_warning


def test_percentile_is_the_nearest_rank_of_the_sorted_samples():
    samples = [float(n) for n in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(samples, 0) == 1
    assert percentile(samples, .5) == 51  # rank round(0.5 * 99) = 50 (0-based) of 1..100
    assert percentile(samples, .99) == 99
    assert percentile(samples, 1) == 100
    assert percentile([7.0], .99) == 7


def test_figures_taken_with_debug_on_carry_a_warning(settings):
    settings.DEBUG = True
    assert "DJANGO_DEBUG=false" in settings_warning()
    settings.DEBUG = False
    assert settings_warning() is None
