"""The `datso` command line (Typer): a face like api/, calling the same functions in layers/ and tiles/."""
