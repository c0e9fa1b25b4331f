"""Reading, validating, splitting and transforming labelled face images.

The names below load on first use: ``agegender.data.images`` (decoding, needed by every prediction) must not
pull in pandas through the readers.
"""

from agegender.utils.lazy import lazy_exports

_EXPORTS = {
    "read_dataset": "agegender.data.readers",
    "DataError": "agegender.data.records",
    "FaceRecord": "agegender.data.records",
    "Reading": "agegender.data.records",
    "ReadReport": "agegender.data.records",
    "split_records": "agegender.data.splits",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
