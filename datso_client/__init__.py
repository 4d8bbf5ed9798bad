"""datso_client: read a datso service over HTTP as GeoDataFrames and DataFrames, without database access.

    from datso_client import Client, read_collection
    gdf = read_collection("https://datso.example.vn", "parcels", filter="status='leased'", crs="EPSG:9210")

    api = Client("https://datso.example.vn", key=None)          # an officer's API key to write
    api.read(layer, bbox=…, filter=…, crs=…)       # GeoDataFrame, every page followed
    api.write(layer, gdf)                           # all rows or none (the service's import); officers
    api.stats(layer, raster, fid=None, expression="(nir-red)/(nir+red)", where=…)   # zonal statistics
    api.aggregate(layer, "crop,status", sum="area_m2")  # DataFrame
    api.trace(lot)                                  # Trace: lot, origins (GeoDataFrame), events, …
    api.lookup(lon, lat)                            # what is on record at a point

It imports nothing from the server's packages (an import-linter contract) and needs only pandas, geopandas and
pyogrio (the HTTP is the standard library's). Errors of the service (4xx/5xx) are raised as `DatsoError` with
the service's problem detail (in Vietnamese unless `lang="en"`).
"""

from datso_client.client import Client, DatsoError, Trace, aggregate, read_collection

__all__ = ["Client", "DatsoError", "Trace", "aggregate", "read_collection"]
