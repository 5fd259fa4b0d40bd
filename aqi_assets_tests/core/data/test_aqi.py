"""US EPA 2024 AQI of every pollutant: breakpoints, unit conversion at 25 °C, truncation, index values."""

import numpy as np
import pytest

from aqi_assets.core.data.aqi import CATEGORIES, aqi, category, category_index
from aqi_assets.core.data.units import GAS_UG_PER_PPB


@pytest.mark.parametrize("value, expected", [
    (0.0, "Good"), (9.0, "Good"), (9.04, "Good"), (9.1, "Moderate"), (35.4, "Moderate"),
    (35.49, "Moderate"), (35.5, "Unhealthy for Sensitive Groups"), (55.4, "Unhealthy for Sensitive Groups"),
    (55.5, "Unhealthy"), (125.4, "Unhealthy"), (125.5, "Very Unhealthy"), (225.4, "Very Unhealthy"),
    (225.5, "Hazardous"), (999.0, "Hazardous"), (-3.0, "Good"),
])
def test_pm25_category_follows_the_2024_breakpoints_after_truncation(value, expected):
    assert category([value], "pm25")[0] == expected


def test_category_index_orders_categories_and_marks_nan():
    index = category_index([5, 20, 40, 100, 200, 300, np.nan], "pm25")
    assert index.tolist() == [0, 1, 2, 3, 4, 5, -1]
    assert len(CATEGORIES) == 6


@pytest.mark.parametrize("value, expected", [
    (0.0, 0), (9.0, 50), (9.1, 51), (12.0, 56), (35.4, 100), (35.5, 101), (55.4, 150), (55.5, 151),
    (125.4, 200), (225.4, 300), (225.5, 301), (325.4, 500),
])
def test_pm25_index_is_linear_within_each_segment(value, expected):
    assert aqi([value], "pm25")[0] == expected


def test_index_extrapolates_beyond_the_top_breakpoint():
    above = aqi([400.0, 500.0], "pm25")
    assert above[0] > 500 and above[1] > above[0]
    assert np.isnan(aqi([np.nan], "pm25")[0])


# Bounds in each table's own unit (ppb for NO2, SO2, O3; ppm for CO; µg/m³ for PM10), converted to
# µg/m³ at 25 °C the way a network's readings arrive.
@pytest.mark.parametrize("pollutant, per_unit, value, expected", [
    ("pm10", 1.0, 54, "Good"), ("pm10", 1.0, 55, "Moderate"), ("pm10", 1.0, 425, "Hazardous"),
    ("no2", GAS_UG_PER_PPB["no2"], 53, "Good"), ("no2", GAS_UG_PER_PPB["no2"], 54, "Moderate"),
    ("no2", GAS_UG_PER_PPB["no2"], 361, "Unhealthy"),
    ("so2", GAS_UG_PER_PPB["so2"], 35, "Good"), ("so2", GAS_UG_PER_PPB["so2"], 76, "Unhealthy for Sensitive Groups"),
    ("o3", GAS_UG_PER_PPB["o3"], 70, "Moderate"), ("o3", GAS_UG_PER_PPB["o3"], 71, "Unhealthy for Sensitive Groups"),
    ("o3", GAS_UG_PER_PPB["o3"], 405, "Hazardous"),
    ("co", 1000 * GAS_UG_PER_PPB["co"], 4.4, "Good"), ("co", 1000 * GAS_UG_PER_PPB["co"], 4.5, "Moderate"),
    ("co", 1000 * GAS_UG_PER_PPB["co"], 15.5, "Very Unhealthy"),
])
def test_every_pollutant_uses_its_own_breakpoints_in_its_own_unit(pollutant, per_unit, value, expected):
    assert category([value * per_unit], pollutant)[0] == expected


def test_the_same_concentration_means_different_categories_for_different_pollutants():
    # 60 µg/m³ is Unhealthy as PM2.5, Moderate as PM10, Good as NO2 (32 ppb)
    assert category([60.0] * 3, "pm25")[0] == "Unhealthy"
    assert category([60.0], "pm10")[0] == "Moderate"
    assert category([60.0], "no2")[0] == "Good"
    with pytest.raises(ValueError, match="no AQI breakpoints for 'temperature'"):
        category([1.0], "temperature")


def test_gas_conversion_factors_at_25_degrees():
    assert GAS_UG_PER_PPB["no2"] == pytest.approx(1.882, abs=1e-3)
    assert GAS_UG_PER_PPB["so2"] == pytest.approx(2.620, abs=1e-3)
    assert GAS_UG_PER_PPB["o3"] == pytest.approx(1.963, abs=1e-3)
    assert GAS_UG_PER_PPB["co"] == pytest.approx(1.146, abs=1e-3)
