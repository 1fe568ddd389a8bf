"""The `tessera` console command."""
