"""IFU map formats registered in the format registry (kind "maps"): MaNGA DAP, Pipe3D, Firefly CSV, SAMI stellar
kinematics, HDF5 stack.

Readers return a validated :class:`core.data.maps.MapStack`; only ``map_stack_hdf5`` has a writer. Its extensions
are ``.maps.h5``/``.maps.hdf5`` so that writing a table to ``*.h5`` by extension still picks the table writer;
``MapStack.to_hdf5`` writes any file name, and reading identifies stacks by content whatever their name.
"""

from __future__ import annotations

from core.data.io.maps_hdf5 import identify_map_stack, read_map_stack, write_map_stack
from core.data.io.maps_manga import identify_firefly_csv, identify_manga_dap, read_firefly_csv, read_manga_dap
from core.data.io.maps_pipe3d import identify_pipe3d, read_pipe3d
from core.data.io.maps_sami import identify_sami_kinematics, read_sami_kinematics
from core.data.io.registry import FormatSpec, register_format

__all__ = ["MAP_FORMATS"]

MAP_FORMATS = (
    FormatSpec(name="manga_dap", kind="maps",
               description="MaNGA DAP MAPS file: STELLAR_VEL, STELLAR_SIGMA (SIGMACORR-corrected), SPX_MFLUX "
                           "with IVAR and MASK; REFF from the header",
               extensions=(".fits.gz", ".fits", ".fit", ".fits.fz"), identify=identify_manga_dap,
               read=read_manga_dap, priority=20),
    FormatSpec(name="pipe3d", kind="maps",
               description="Pipe3D per-pixel SSP table (astropy-table HDF5, e.g. CALIFA *.pipe3d.hdf5): "
                           "Sigma*, velocity, dispersion, age, [Z/H], flux",
               extensions=(".pipe3d.hdf5", ".hdf5", ".h5"), identify=identify_pipe3d, read=read_pipe3d,
               priority=20),
    FormatSpec(name="firefly_csv", kind="maps",
               description="Firefly per-spaxel log M* map CSV (first line = column indices, empty = no data)",
               extensions=(".csv",), identify=identify_firefly_csv, read=read_firefly_csv, priority=20),
    FormatSpec(name="sami_kinematics", kind="maps",
               description="SAMI DR2/DR3 stellar kinematics: one map per FITS file (velocity with VEL_ERR, or "
                           "dispersion with SIG_ERR; km/s); read a galaxy's files together, combined by CATID",
               extensions=(".fits", ".fits.gz", ".fit"), identify=identify_sami_kinematics,
               read=read_sami_kinematics, priority=20),
    FormatSpec(name="map_stack_hdf5", kind="maps",
               description="Galaxy Posterior Studio HDF5 map stack (read and write)",
               extensions=(".maps.h5", ".maps.hdf5"), identify=identify_map_stack,
               read=read_map_stack, write=write_map_stack, priority=21),
)

for _spec in MAP_FORMATS:
    register_format(_spec)
