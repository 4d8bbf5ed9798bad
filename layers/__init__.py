"""datso data model: settings, database access, the layer registry, migrations, import/export pipelines."""
