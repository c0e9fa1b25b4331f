"""Reading label CSVs (manifests, competition files) with one clear error for each way a CSV goes wrong."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from agegender.data.records import DataError

__all__ = ["read_table"]

_TEXT_COLUMNS = ("id", "path", "full_path", "source_digest")
_MISSING = ["", "NA", "N/A", "NaN", "nan", "null", "None"]


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV with clear errors; ids and paths stay text."""
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with more fields than the header must not make pandas take the first column
            # as an index and shift every column by one; pandas warns instead, and the warning is made an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # ids and paths are text, exactly as written ("007" stays "007", an id "NA" stays "NA");
            # only label columns may be missing.
            df = pd.read_csv(
                path,
                dtype={c: str for c in _TEXT_COLUMNS},
                keep_default_na=False,
                na_values={c: _MISSING for c in ("age", "gender", "race")},
                index_col=False,
            )
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the CSV file is empty") from None
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: some rows have more fields than the header names; quote values with commas") from None
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not UTF-8 text (e.g. saved as Latin-1 by a spreadsheet); save it as UTF-8 CSV"
        ) from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if len(df.columns) == 1 and (sep := next((c for c in ";\t|" if c in str(df.columns[0])), None)):
        raise DataError(
            f"{path}: the values are separated by {sep!r}, not commas (header {df.columns[0]!r}); "
            "save it as comma-separated CSV"
        )
    return df
