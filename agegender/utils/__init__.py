"""Small helpers shared by the library and the CLI."""
