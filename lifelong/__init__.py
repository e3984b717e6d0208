"""lifelong: a daemon for streaming continual learning (Kafka in, PyTorch model, Prometheus out)."""

__version__ = "0.1.0"
