"""datso's FastAPI service: app factory, settings, database pool, auth, routers generated from the registry."""
