import numpy as np
import pandas as pd

from apps.forecasting import config as forecasting_config
from apps.forecasting import data, evaluation
from apps.forecasting.app import APP


def test_fit_ridge_is_the_centered_closed_form_with_an_unpenalized_bias():
    generator = np.random.default_rng(0)
    histories = generator.normal(size=(40, 6, 2))  # (windows, lookback, columns)
    futures = generator.normal(size=(40, 3, 1)) + 5.0  # (windows, horizon, targets)
    weights, bias = evaluation.fit_ridge(histories, futures, alpha=2.5)
    features, outputs = histories.reshape(40, -1), futures.reshape(40, -1)
    centered = features - features.mean(axis=0)
    expected = np.linalg.solve(
        centered.T @ centered + 2.5 * np.eye(12), centered.T @ (outputs - outputs.mean(axis=0))
    )
    np.testing.assert_allclose(weights, expected, rtol=1e-10)
    np.testing.assert_allclose(bias, outputs.mean(axis=0) - features.mean(axis=0) @ expected)
    forecast = evaluation.ridge_forecast(histories, weights, bias, horizon=3)
    np.testing.assert_allclose(forecast.reshape(40, -1), features @ weights + bias)


def test_fit_ridge_recovers_an_exact_linear_map_with_a_tiny_penalty():
    generator = np.random.default_rng(1)
    features = generator.normal(size=(50, 4))
    true_weights = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    weights, bias = evaluation.fit_ridge(features, features @ true_weights + [7.0, -3.0], 1e-9)
    np.testing.assert_allclose(weights, true_weights, atol=1e-8)
    np.testing.assert_allclose(bias, [7.0, -3.0], atol=1e-8)


def test_conformal_offsets_are_the_order_statistics_that_keep_the_nominal_share():
    residuals = np.arange(19.0)[::-1, None] * [1.0, -1.0]  # 19 windows, two columns
    # ranks ceil(20 * 0.9) = 18 and floor(20 * 0.1) = 2 of each column's sorted residuals
    np.testing.assert_array_equal(
        evaluation.conformal_offset(residuals, 0.9, upper=True), [17.0, -1.0]
    )
    np.testing.assert_array_equal(
        evaluation.conformal_offset(residuals, 0.1, upper=False), [1.0, -17.0]
    )
    # Too few windows for the rank: the extreme residual.
    np.testing.assert_array_equal(
        evaluation.conformal_offset(residuals[:3], 0.9, upper=True), [18.0, -16.0]
    )
    np.testing.assert_array_equal(
        evaluation.conformal_offset(residuals[:3], 0.1, upper=False), [16.0, -18.0]
    )
    # On 12 exchangeable windows, at least the nominal share of new values falls below the
    # upper level and at most it below the lower one (the empirical quantile: about 67%).
    generator = np.random.default_rng(0)
    samples, new = generator.normal(size=(12, 20_000)), generator.normal(size=20_000)
    upper = evaluation.conformal_offset(samples, 0.9, upper=True)
    lower = evaluation.conformal_offset(samples, 0.1, upper=False)
    assert (new <= upper).mean() >= 0.9 and (new < lower).mean() <= 0.1
    plain = (new <= np.quantile(samples, 0.9, axis=0)) & (new >= np.quantile(samples, 0.1, axis=0))
    assert ((new <= upper) & (new >= lower)).mean() >= 0.8 > plain.mean()


def test_quantile_calibration_gives_the_nominal_coverage_on_held_out_windows(tmp_path):
    """An untrained linear-base quantile model has all levels at the point forecast (coverage
    near 0); the validation offsets bring the 0.1-0.9 interval to about 80% on the test part
    of a seasonal series with i.i.d. noise, and leave the point forecast unchanged."""
    steps = 600
    generator = np.random.default_rng(3)
    values = 50 + 10 * np.sin(2 * np.pi * np.arange(steps) / 12) + generator.normal(0, 2, steps)
    source = tmp_path / "noisy.csv"
    times = pd.date_range("1950-01-01", periods=steps, freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"time": times, "value": values}).to_csv(source, index=False)
    config = forecasting_config.tiny()
    config.data.source = str(source)
    config.model.quantiles = (0.1, 0.5, 0.9)
    config.model.linear_base = True
    datasets = data.load_data(config)
    model = APP.model.build_model(config, datasets.assets)

    def test_levels() -> tuple[np.ndarray, np.ndarray]:
        outputs, truths = zip(
            *[(np.asarray(model(x, training=False)), np.asarray(y)) for x, y in datasets.test],
            strict=True,
        )
        return np.concatenate(outputs), np.concatenate(truths)

    before, truth = test_levels()
    assert evaluation.interval_coverage(before, truth, (0.1, 0.5, 0.9))["coverage"] < 0.1
    assert evaluation.calibrate_quantiles(model, config, datasets)
    after, _ = test_levels()
    coverage = evaluation.interval_coverage(after, truth, (0.1, 0.5, 0.9))["coverage"]
    assert 0.7 <= coverage <= 0.9, coverage
    np.testing.assert_allclose(after[..., 1], before[..., 1], atol=1e-6)
    below = (truth < after[..., 0]).mean(), (truth < after[..., 2]).mean()
    assert 0.03 <= below[0] <= 0.2 and 0.8 <= below[1] <= 0.97, below
    # Calibrating a calibrated model changes nothing (a rerun after a kill may do it).
    bias = model.get_layer("head").get_weights()[1]
    evaluation.calibrate_quantiles(model, config, datasets)
    np.testing.assert_allclose(model.get_layer("head").get_weights()[1], bias, atol=1e-5)


def test_interval_offsets_widen_both_sides_when_the_base_was_biased_on_validation():
    """Levels all at a zero forecast; validation truths biased (mean 3), new truths not. The
    pair's symmetric score widens the 0.1-0.9 interval around the forecast, so it still holds
    at least the nominal share of the unbiased truths (each level's own residuals would put
    the interval above them, holding about 4%); on exchangeable windows it holds about the
    nominal share, and the median and the unpaired 0.95 level keep their meaning."""
    generator = np.random.default_rng(0)
    levels = (0.1, 0.5, 0.9, 0.95)
    output = np.zeros((40, 2, 1, len(levels)))
    biased = generator.normal(3.0, 1.0, size=(40, 2, 1))
    offsets = evaluation.interval_offsets(output, biased, levels)
    assert np.all(offsets[..., 1] == 0.0)
    assert np.allclose(offsets[..., 0], -offsets[..., 2]) and np.all(offsets[..., 2] > 3.0)
    new = generator.normal(0.0, 1.0, size=(20_000, 2, 1))
    calibrated = output[:1] + offsets
    assert evaluation.interval_coverage(calibrated, new, levels[:3])["coverage"] >= 0.8
    # The unpaired level: at least 95% of the biased truths fall below it.
    assert (biased <= calibrated[..., 3]).mean() >= 0.95
    exchangeable = generator.normal(0.0, 1.0, size=(40, 2, 1))
    offsets = evaluation.interval_offsets(output, exchangeable, levels)
    coverage = evaluation.interval_coverage(output[:1] + offsets, new, levels[:3])["coverage"]
    assert 0.75 <= coverage <= 0.92, coverage


def test_a_gain_counts_only_beyond_chance_over_blocks_of_windows():
    generator = np.random.default_rng(0)
    base = generator.uniform(1.0, 2.0, size=120)
    # A steady 10% gain over 10 blocks of 12 windows: shown.
    assert evaluation.significant_gain(base, base * 0.9, horizon=12)
    # The same mean gain, but all of it in one block and losses elsewhere: not shown.
    errors = base * 1.02
    errors[:12] = base[:12] - 0.1 * base.sum() / 12 - 0.02 * base[12:].sum() / 12
    assert (base - errors).mean() > 0
    assert not evaluation.significant_gain(base, errors, horizon=12)
    # Fewer than two blocks of windows cannot show anything.
    assert not evaluation.significant_gain(base[:20], base[:20] * 0.5, horizon=12)
