"""rnn-forecast: forecast the next steps of time series (point forecasts or quantiles).

Data (--data): sunspots (monthly, pmdarima), seattle-weather (daily, vega_datasets), or your own
CSV file: a time column (the first, or --set data.time_column=...), target columns (every
other column, or --set data.target_columns=a,b) and optional covariate columns
(--set data.covariate_columns=c). Empty cells are interpolated and counted (--set
data.missing=fail to refuse them); more than data.max_missing_fraction (0.05) of a column's
cells refuses the series. Presets: base (sunspots benchmark), quick (the main job), weather,
tiny (tests).

predict --input FILE reads a CSV whose first column is the time and whose other columns are the
model's columns in training order (targets first); it forecasts the steps after the file's end
and writes CSV (time, each target, and each target's quantiles).

Example:
  rnn-forecast train --workdir runs/forecast --preset quick
  rnn-forecast evaluate --workdir runs/forecast
  rnn-forecast export --workdir runs/forecast
  rnn-forecast tail --data sunspots --steps 132 --output recent.csv
  rnn-forecast predict --model saved_models/forecasting --input recent.csv --output next.csv
"""

from apps.core import cli
from apps.forecasting.app import APP


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
