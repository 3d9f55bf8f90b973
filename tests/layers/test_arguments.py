import pytest

from layers.arguments import check_positive_integers, check_window_fits


def test_positive_integers_pass_and_the_first_bad_one_is_named():
    check_positive_integers(units=1, horizon=12)
    with pytest.raises(ValueError, match=r"`horizon` must be a positive integer.*horizon=0"):
        check_positive_integers(units=4, horizon=0, targets=-1)
    with pytest.raises(ValueError, match=r"units=2\.0"):
        check_positive_integers(units=2.0)


def test_window_must_fit_a_known_input_length():
    check_window_fits(24, (None, 24, 3))
    check_window_fits(24, (None, None, 3))  # unknown length: checked when data arrives
    with pytest.raises(ValueError, match=r"`window` \(25\) is longer than the input's 24 steps"):
        check_window_fits(25, (None, 24, 3))
