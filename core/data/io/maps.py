"""IFU map formats (MaNGA DAP, Pipe3D, Firefly, HDF5 map stack). Being written."""
