"""``python -m lifelong`` is the ``lifelong`` command."""

from lifelong.cli import app

if __name__ == "__main__":  # a spawned child (daemon.fetcher: process) imports this module again
    app()
