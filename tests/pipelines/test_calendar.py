import numpy as np
import pandas as pd
import pytest

from pipelines import windows
from pipelines.calendar import Calendar, time_values
from pipelines.sources.time_series import SECONDS_PER_DAY, Frequency

DAILY = Frequency("daily", (7.0, 365.25), SECONDS_PER_DAY)


def test_terms_are_the_fourier_terms_of_each_forecast_steps_phase():
    calendar = Calendar.of(DAILY, DAILY.seasons, order=3)
    assert calendar.orders == (3, 3) and calendar.size == 12
    last_times = time_values(np.array(["2024-03-01", "2031-07-19"], dtype="datetime64[s]"))
    terms = calendar.terms(last_times, horizon=5).numpy()
    days = last_times[:, None] / SECONDS_PER_DAY + np.arange(1, 6)  # the forecast steps, in days
    expected = [
        function(2 * np.pi * order * days / season)
        for season in (7.0, 365.25)
        for order in (1, 2, 3)
        for function in (np.sin, np.cos)
    ]
    np.testing.assert_allclose(terms, np.stack(expected, axis=-1), atol=2e-6)


def test_a_step_is_one_season_of_steps_after_the_same_phase():
    calendar = Calendar.of(Frequency("hourly", (24.0, 168.0), 3600.0), (24.0, 168.0), order=2)
    last = time_values(np.array(["2025-11-30T17:00"], dtype="datetime64[s]"))
    # A thousand weeks later the phase of every season is the same: float64 keeps it exact.
    later = last + 1000 * 168 * 3600.0
    np.testing.assert_allclose(
        calendar.terms(last, 24).numpy(), calendar.terms(later, 24).numpy(), atol=1e-6
    )
    # The terms of step h + 1 from the last time are those of step h from one step later.
    np.testing.assert_allclose(
        calendar.terms(last, 24).numpy()[:, 1:], calendar.terms(last + 3600, 23).numpy(), atol=1e-6
    )


def test_calendar_months_sit_at_their_phase_of_the_year():
    calendar = Calendar.of(Frequency("monthly", (12.0,), 1.0), (12.0,), order=6)
    assert calendar.orders == (6,)
    months = pd.date_range("1990-01-01", periods=36, freq="MS").to_numpy()
    terms = calendar.next_terms(months)  # the month after each
    # February's first-order phase is about 1/12 of a year past January 1st (Jan 1 2000: 0).
    after_january = calendar.next_terms(np.array(["2000-01-01"], dtype="datetime64[s]"))
    np.testing.assert_allclose(
        after_january[0, :2], [np.sin(np.pi / 6), np.cos(np.pi / 6)], atol=0.01
    )
    # The same month of another year: the same yearly phase, to a day or two of the mean month
    # (the higher orders multiply that offset).
    for year in (1, 2):
        np.testing.assert_allclose(
            terms[:12, :2], terms[12 * year : 12 * (year + 1), :2], atol=0.03
        )


def test_orders_are_capped_at_half_the_season_and_short_seasons_dropped():
    quarterly = Frequency("quarterly", (4.0,), 1.0)
    assert Calendar.of(quarterly, (4.0,), order=3).orders == (2,)
    assert Calendar.of(quarterly, (1.5,), order=3) is None
    assert Calendar.of(DAILY, (7.0, 365.25), order=0) is None
    calendar = Calendar.of(DAILY, (7.0,), order=1)
    assert Calendar.from_json(calendar.to_json()) == calendar
    assert Calendar.from_json({}) is None


@pytest.mark.parametrize("times", ["dates", "numbers"])
def test_windows_carry_the_terms_of_their_last_history_step(times):
    steps, lookback, horizon = 30, 5, 3
    if times == "dates":
        stamps = pd.date_range("2020-01-01", periods=steps, freq="D").to_numpy()
        calendar = Calendar.of(DAILY, (7.0,), order=2)
    else:
        stamps = 0.5 * np.arange(steps)  # a numeric time column, a step of 0.5
        calendar = Calendar.of(Frequency("every 0.5", (), 0.5), (6.0,), order=2)
    values = np.arange(steps, dtype=np.float64)[:, None]
    starts = np.array([0, 7, 22])
    dataset = windows.make_windows(
        values, starts, lookback, horizon, target_indices=[0], calendar=calendar,
        times=time_values(stamps), batch_size=8,
    )  # fmt: skip
    inputs, _ = next(iter(dataset))
    expected = calendar.terms(time_values(stamps)[starts + lookback - 1], horizon).numpy()
    np.testing.assert_allclose(inputs["calendar"].numpy(), expected, atol=1e-6)
    # A numeric time of 0.5 steps and a season of 6 steps: period 3.0 time units.
    if times == "numbers":
        phase = (0.5 * (starts + lookback - 1))[:, None] / 3.0 + np.arange(1, 4) / 6.0
        np.testing.assert_allclose(expected[..., 0], np.sin(2 * np.pi * phase), atol=1e-6)
