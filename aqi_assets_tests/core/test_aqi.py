"""US EPA 2024 PM2.5 AQI: breakpoints, truncation, index values."""

import numpy as np
import pytest

from aqi_assets.core.aqi import CATEGORIES, pm25_aqi, pm25_category, pm25_category_index


@pytest.mark.parametrize("value, category", [
    (0.0, "Good"), (9.0, "Good"), (9.04, "Good"), (9.1, "Moderate"), (35.4, "Moderate"),
    (35.49, "Moderate"), (35.5, "Unhealthy for Sensitive Groups"), (55.4, "Unhealthy for Sensitive Groups"),
    (55.5, "Unhealthy"), (125.4, "Unhealthy"), (125.5, "Very Unhealthy"), (225.4, "Very Unhealthy"),
    (225.5, "Hazardous"), (999.0, "Hazardous"), (-3.0, "Good"),
])
def test_category_follows_the_2024_breakpoints_after_truncation(value, category):
    assert pm25_category([value])[0] == category


def test_category_index_orders_categories_and_marks_nan():
    index = pm25_category_index([5, 20, 40, 100, 200, 300, np.nan])
    assert index.tolist() == [0, 1, 2, 3, 4, 5, -1]
    assert len(CATEGORIES) == 6


@pytest.mark.parametrize("value, aqi", [
    (0.0, 0), (9.0, 50), (9.1, 51), (12.0, 56), (35.4, 100), (35.5, 101), (55.4, 150), (55.5, 151),
    (125.4, 200), (225.4, 300), (225.5, 301), (325.4, 500),
])
def test_index_is_linear_within_each_segment(value, aqi):
    assert pm25_aqi([value])[0] == aqi


def test_index_extrapolates_beyond_the_top_breakpoint():
    above = pm25_aqi([400.0, 500.0])
    assert above[0] > 500 and above[1] > above[0]
    assert np.isnan(pm25_aqi([np.nan])[0])
