"""Storage backends shipped with annota, one plugin per backend (``local`` serves POSIX directories)."""
