"""Agent steps: profiles resolved at run time, CLI and API backends, transcripts, artifacts."""
