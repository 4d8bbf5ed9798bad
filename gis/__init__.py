"""Pure GIS for datso: CRS registry (EPSG + VN-2000 TM-3 zones), transforms, geometry checks, file I/O.

Knows nothing about HTTP or database tables.
"""
