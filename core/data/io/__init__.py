"""Readers and writers for catalogue tables and IFU map files, through one format registry.

Importing this package registers the built-in formats (``tables``: CSV, FITS, HDF5, Parquet, TNG Subfind
chunks; ``maps``: MaNGA DAP MAPS, Pipe3D, Firefly tables, SAMI stellar kinematics, our HDF5 map stack).
"""

from core.data.io.registry import FORMATS, FormatSpec, identify_format, read, register_format, write

from core.data.io import tables as _tables  # noqa: F401,E402  (registers table formats)
from core.data.io import maps as _maps  # noqa: F401,E402  (registers map formats)

__all__ = ["FORMATS", "FormatSpec", "identify_format", "read", "register_format", "write"]
