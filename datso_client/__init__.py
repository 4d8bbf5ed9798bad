"""datso_client: read a datso service over HTTP as GeoDataFrames and DataFrames, without database access.

    from datso_client import read_collection
    gdf = read_collection("https://datso.example.vn", "parcels", filter="status='leased'", crs="EPSG:9210")

It imports nothing from the server's packages (an import-linter contract) and needs only pandas, geopandas and
pyogrio (the HTTP is the standard library's). Errors of the service (4xx/5xx) are raised as `DatsoError` with
the service's problem detail (in Vietnamese unless `lang="en"`).
"""

from datso_client.client import Client, DatsoError, aggregate, read_collection

__all__ = ["Client", "DatsoError", "aggregate", "read_collection"]
