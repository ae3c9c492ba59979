"""The inspection station: several cameras described by one station file, run unattended by
``edgeseg serve`` (config.py: the file's schema; service.py: the running station)."""
