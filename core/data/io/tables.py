"""Table formats (CSV, FITS, HDF5, Parquet, TNG Subfind group catalogues). Being written."""
