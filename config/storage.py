"""Static files for production: hashed names and gzip, served by whitenoise."""

from __future__ import annotations

from typing import Any

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class GzipManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Whitenoise's storage, compressing with gzip only.

    Whitenoise adds Brotli whenever the `brotli` package happens to be installed (a
    dependency of some other package), at its slowest setting: collectstatic then
    took minutes instead of seconds for plotly.js and Swagger UI. Gzip alone keeps
    start-up and image builds quick, whatever else is installed.
    """

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return Compressor(use_brotli=False, **kwargs)
