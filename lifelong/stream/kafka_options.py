"""Translate :class:`lifelong.config.KafkaConfig` into keyword arguments for kafka-python clients.

Security settings (``security_protocol``, ``sasl_*``, ``ssl_*``) pass straight through, so pointing the daemon
at a real cluster is a config change only. Unset values are not passed: kafka-python's defaults apply.
"""

from __future__ import annotations

from typing import Any

from lifelong.config import KafkaConfig

__all__ = ["admin_kwargs", "common_kwargs", "consumer_kwargs", "producer_kwargs"]


def common_kwargs(cfg: KafkaConfig, client_id: str = "lifelong") -> dict[str, Any]:
    """Connection and security settings shared by consumers, producers and admin clients."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": list(cfg.bootstrap_servers),
        "client_id": client_id,
        "security_protocol": cfg.security_protocol,
        "reconnect_backoff_max_ms": cfg.reconnect_backoff_max_ms,
        "bootstrap_timeout_ms": cfg.bootstrap_timeout_ms,
    }
    if cfg.sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = cfg.sasl_mechanism
    if cfg.sasl_plain_username is not None:
        kwargs["sasl_plain_username"] = cfg.sasl_plain_username
    if cfg.sasl_plain_password is not None:
        kwargs["sasl_plain_password"] = cfg.sasl_plain_password.get_secret_value()
    if cfg.security_protocol in {"SSL", "SASL_SSL"}:
        kwargs["ssl_check_hostname"] = cfg.ssl_check_hostname
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(cfg, name)
        if value is not None:
            kwargs[name] = str(value)
    return kwargs


def consumer_kwargs(cfg: KafkaConfig, **overrides: Any) -> dict[str, Any]:
    """A throughput-tuned consumer that never commits by itself and hands back raw bytes.

    No deserializers: a bad record must reach the application (and the dead-letter topic), not raise inside
    the client. ``max_poll_records`` and the fetch sizes come from the config (thousands of records per poll
    keep kafka-python near its peak rate).
    """
    kwargs = common_kwargs(cfg, client_id="lifelong-consumer")
    kwargs.update(
        group_id=cfg.group_id,
        enable_auto_commit=False,
        auto_offset_reset=cfg.auto_offset_reset,
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        max_poll_interval_ms=cfg.max_poll_interval_ms,
        max_poll_records=cfg.max_poll_records,
        fetch_max_bytes=cfg.fetch_max_bytes,
        max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
        receive_message_max_bytes=max(cfg.fetch_max_bytes + 1024 * 1024, 100_000_000),
        allow_auto_create_topics=False,  # the producer side (feed) decides partition counts
    )
    if cfg.group_instance_id:
        kwargs["group_instance_id"] = cfg.group_instance_id
    kwargs.update(overrides)
    return kwargs


def producer_kwargs(cfg: KafkaConfig, **overrides: Any) -> dict[str, Any]:
    """A producer that waits for all in-sync replicas and batches a little (``linger_ms``) for throughput."""
    kwargs = common_kwargs(cfg, client_id="lifelong-producer")
    kwargs.update(
        acks="all",
        linger_ms=5,
        batch_size=512 * 1024,
        max_request_size=max(cfg.max_partition_fetch_bytes, 1024 * 1024),
    )
    kwargs.update(overrides)
    return kwargs


def admin_kwargs(cfg: KafkaConfig, **overrides: Any) -> dict[str, Any]:
    kwargs = common_kwargs(cfg, client_id="lifelong-admin")
    kwargs.update(overrides)
    return kwargs
