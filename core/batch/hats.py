"""HATS catalogues (the LSST/Rubin partitioned-Parquet layout): parts per HEALPix pixel read by ``lsdb``, and the
output written as a HATS catalogue that ``lsdb.open_catalog`` reads back.

Input: ``lsdb.open_catalog(path)`` (a catalogue or a collection); every pixel is one part, and the worker receives
the pixel's rows from lsdb's own partition reader (``Catalog.get_partition(order, pixel).to_delayed()``), so the
reading happens on the workers. Output: ``OUT/hats/dataset/Norder=k/Dir=d/Npix=n.parquet`` per pixel (same pixels as
the input; the id, ``_healpix_29``, ra and dec columns are carried over), then, when every pixel is done,
``partition_info.csv``, ``dataset/_metadata`` and ``hats.properties`` are written with the ``hats`` library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import GPSError

__all__ = ["hats_parts", "pixel_delayed", "finish_hats_output", "spatial_columns", "OUTPUT_NAME"]

OUTPUT_NAME = "hats"


def hats_parts(source: str) -> list[dict[str, Any]]:
    """One part per pixel of the HATS catalogue at ``source`` (order/pixel, row count from the partition info)."""
    cat = _open(source)
    stats = _rows_per_pixel(cat)
    parts, offset = [], 0
    for i, px in enumerate(cat.get_healpix_pixels()):
        n = int(stats.get((px.order, px.pixel), 0))
        rel = f"{OUTPUT_NAME}/dataset/Norder={px.order}/Dir={(px.pixel // 10000) * 10000}/Npix={px.pixel}.parquet"
        parts.append({"id": f"pix-{px.order}-{px.pixel}", "index": i, "kind": "hats", "path": str(source),
                      "start": 0, "stop": n, "offset": offset, "order": int(px.order), "pixel": int(px.pixel),
                      "out": rel})
        offset += n
    if not parts:
        raise GPSError("the HATS catalogue has no partitions", source=str(source))
    return parts


def spatial_columns(source: str) -> tuple[str, ...]:
    """The columns every output row keeps: the HEALPix index and the catalogue's ra/dec columns."""
    info = _open(source).hc_structure.catalog_info
    return ("_healpix_29", info.ra_column or "ra", info.dec_column or "dec")


def pixel_delayed(source: str, parts: list[dict]) -> dict[str, Any]:
    """part id -> a dask Delayed of that pixel's rows (a pandas frame read by lsdb where the task runs)."""
    cat = _open(source)
    return {p["id"]: cat.get_partition(p["order"], p["pixel"]).to_delayed()[0] for p in parts}


def finish_hats_output(source: str, out_dir: str, parts: list[dict]) -> Path:
    """Write the HATS metadata of ``OUT/hats`` (partition info, Parquet ``_metadata``, properties)."""
    from hats.catalog import PartitionInfo, TableProperties
    from hats.io import write_parquet_metadata
    from hats.pixel_math import HealpixPixel

    root = Path(out_dir) / OUTPUT_NAME
    pixels = [HealpixPixel(p["order"], p["pixel"]) for p in parts]
    total = write_parquet_metadata(str(root))
    PartitionInfo.from_healpix(pixels).write_to_file(root / "partition_info.csv")
    info = _open(source).hc_structure.catalog_info
    props = TableProperties(catalog_name=f"{info.catalog_name}_posteriors", catalog_type="object",
                            total_rows=int(total), ra_column=info.ra_column, dec_column=info.dec_column)
    props.to_properties_file(root)
    return root


def _open(source: str):
    try:
        import lsdb
    except ImportError:
        raise GPSError("reading HATS catalogues needs lsdb", source=str(source),
                       expected="pip install lsdb hats (the 'survey' extra)") from None
    try:
        return lsdb.open_catalog(str(source))
    except Exception as e:  # noqa: BLE001 - hats/lsdb raise many types for a broken catalogue
        raise GPSError("cannot open this HATS catalogue", source=str(source), found=f"{type(e).__name__}: {e}") \
            from None


def _rows_per_pixel(cat) -> dict[tuple[int, int], int]:
    """Rows of every pixel from the Parquet metadata (no data read)."""
    import pyarrow.parquet as pq
    from hats.io import paths

    out = {}
    base = cat.hc_structure.catalog_base_dir
    for px in cat.get_healpix_pixels():
        try:
            out[(px.order, px.pixel)] = pq.ParquetFile(str(paths.pixel_catalog_file(base, px))).metadata.num_rows
        except Exception:  # noqa: BLE001 - unknown count: the progress bar is approximate, the run is not
            out[(px.order, px.pixel)] = 0
    return out
