"""Configuration: one YAML file validated by pydantic, every key overridable from the environment.

Unknown keys are rejected (``extra="forbid"`` on every section) so a typo fails at start with the key's path
instead of being silently ignored. Environment variables use the prefix ``LIFELONG_`` and ``__`` for nesting,
e.g. ``LIFELONG_OPTIM__LR=0.05`` or ``LIFELONG_KAFKA__BOOTSTRAP_SERVERS=broker:9092``; they win over the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "LIFELONG_"


class Section(BaseModel):
    """Base of every config section: unknown keys are an error, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaConfig(Section):
    """Where the events come from. Security settings are passed straight to the Kafka client."""

    bootstrap_servers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1:9092"],
                                         description="host:port list (or a comma-separated string).")
    topics: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["lifelong.events"], min_length=1,
                              description="Topics to learn from; bad records go to <topic><dead_letter_suffix>.")
    group_id: str = Field(default="lifelong", description="Consumer group; offsets are committed under it.")
    group_instance_id: str | None = Field(
        default=None, description="Static membership id (the pod name on Kubernetes): no rebalance on restart."
    )
    client: Literal["kafka-python", "confluent"] = Field(
        default="kafka-python", description="Kafka client library (confluent needs the `fast` extra).")
    assign: bool = Field(
        default=False,
        description="Assign every partition of the topics directly instead of joining the group "
        "(single instance; offsets are still committed under group_id).",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where to start when neither a checkpoint nor the group has an offset.")
    bootstrap_timeout_ms: PositiveInt = Field(
        default=10_000, description="How long one attempt to reach the cluster may block a kafka-python client "
        "(kafka-python's own default is 30 s): the daemon retries with backoff, and a stop request while the "
        "cluster is unreachable waits at most this long.")
    session_timeout_ms: PositiveInt = Field(default=10_000, description="Group session timeout.")
    heartbeat_interval_ms: PositiveInt = Field(default=3_000, description="Below session_timeout_ms.")
    max_poll_interval_ms: PositiveInt = Field(default=300_000, description="Longest pause between polls.")
    max_poll_records: PositiveInt = Field(default=4_096, description="Upper bound of one micro-batch.")
    poll_timeout_ms: PositiveInt = Field(
        default=1_000, description="Poll wait; keep it above half of session_timeout_ms for group joins.")
    fetch_max_bytes: PositiveInt = Field(default=64 * 1024 * 1024, description="Bytes per fetch response.")
    max_partition_fetch_bytes: PositiveInt = Field(default=16 * 1024 * 1024, description="Bytes per partition.")
    recv_chunk_bytes: NonNegativeInt = Field(
        default=256 * 1024, description="kafka-python only: most bytes one socket read takes on a plaintext "
        "connection, at least 4096 (kafka-python itself reads 4 KiB at a time and has no setting for it; this "
        "replaces that read loop for the whole process, see lifelong/stream/socket_reads.py). 0 keeps "
        "kafka-python's own reads.")
    dead_letter_suffix: str = Field(default=".dlq", description="Dead-letter topic = source topic + suffix.")
    create_dead_letter_topics: bool = Field(
        default=True, description="At start, create a missing dead-letter topic (the broker's default partitions "
        "and replication). Off where topics are managed elsewhere: a missing one is then only reported. Until a "
        "bad record's dead letter is confirmed, no checkpoint is written and no offset committed past it.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Passed to the client as is.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = Field(default=None, description="Never printed; prefer the env var.")
    ssl_cafile: Path | None = Field(default=None, description="CA bundle (PEM) for SSL/SASL_SSL.")
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    reconnect_backoff_max_ms: PositiveInt = Field(default=10_000, description="Cap of the reconnect backoff.")

    @field_validator("bootstrap_servers", "topics", mode="before")
    @classmethod
    def _split_comma_list(cls, value: Any) -> Any:
        """Accept ``"a:9092,b:9092"`` (handy from an environment variable) as well as a YAML list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("recv_chunk_bytes")
    @classmethod
    def _useful_chunk(cls, value: int) -> int:
        if 0 < value < 4096:
            raise ValueError(f"{value} is below kafka-python's own 4096-byte reads: use 0 for those, or more")
        return value

    @model_validator(mode="after")
    def _check_security(self) -> KafkaConfig:
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ValueError(f"sasl_mechanism is required with security_protocol={self.security_protocol}")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        return self


class CodecConfig(Section):
    """How a record's value is decoded into features and a label."""

    name: Literal["json", "f32", "image"] = Field(default="f32", description="Record format (see Codecs).")
    num_features: PositiveInt | None = Field(
        default=None, description="Expected feature count per record (unset: what model.input_shape takes; "
        "set, it must match it); others go to the dead-letter topic (images with more pixels are refused from "
        "their header, before decoding)."
    )
    label_header: str = Field(default="label", description="Kafka header holding the label (image codec).")


class ModelConfig(Section):
    """The network. ``name`` is mlp, cnn, resnet18_reduced or ``torchvision:<model name>``."""

    name: str = Field(default="mlp", description="mlp, cnn, resnet18_reduced or torchvision:<name>.")
    input_shape: list[PositiveInt] = Field(default_factory=lambda: [784],
                                           description="Shape of one input, e.g. [1, 28, 28].")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [256, 256], description="MLP hidden layer widths.")
    max_classes: PositiveInt = Field(default=10, description="Labels >= this go to the dead-letter topic.")
    weights: Path | None = Field(default=None, description="Local weights file (torchvision models).")

    @field_validator("name")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value in {"mlp", "cnn", "resnet18_reduced"} or value.startswith("torchvision:"):
            return value
        raise ValueError(f"unknown model {value!r}: use mlp, cnn, resnet18_reduced or torchvision:<name>")


class OptimConfig(Section):
    """The optimiser and how many gradient steps each micro-batch gets."""

    name: Literal["sgd", "adam", "adamw"] = Field(default="sgd", description="Optimizer.")
    lr: PositiveFloat = Field(default=0.05, description="Learning rate.")
    momentum: NonNegativeFloat = 0.0
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = Field(default=32, description="Samples per gradient step (split of a micro-batch).")
    steps_per_batch: PositiveInt = Field(default=1, description="Passes over each micro-batch.")
    grad_clip: PositiveFloat | None = Field(default=None, description="Clip the gradient norm to this.")
    fused: bool | None = Field(
        default=None, description="Fused optimizer kernel (sgd, adam, adamw on CPU and CUDA); none: on where "
        "available (Adam on 2 CPU cores: +30% learner rate, same predictions).")
    shared_forward: bool | None = Field(
        default=None, description="Read each event's prediction off the training step's own forward pass "
        "(before its update) instead of a separate no-grad pass: one forward pass fewer per event. none: on "
        "unless the model has BatchNorm/dropout or a plugin replaces predictions (NME); true there is refused.")


class ReplayConfig(Section):
    """The replay memory. ``none`` trains on the stream only."""

    kind: Literal["none", "reservoir", "class_balanced", "herding", "generative"] = Field(
        default="none", description="Memory type (see lifelong/strategies/README.md).")
    capacity: PositiveInt = Field(default=500, description="Samples held (not used by generative).")
    batch_size: PositiveInt = Field(default=32, description=(
        "Replayed samples per gradient step. Each is trained like a new one: as many as optim.batch_size (1:1, "
        "the usual setting) doubles the learner's work; fewer cost less and forget more "
        "(benchmarks/replay_ratio.py)."))
    nme: bool = Field(default=False, description="Predict with nearest-mean-of-exemplars (herding only).")
    generator_latent: PositiveInt = Field(default=32, description="VAE latent size (generative).")
    generator_hidden: PositiveInt = Field(default=256, description="VAE hidden width (generative).")

    @model_validator(mode="after")
    def _nme_needs_herding(self) -> ReplayConfig:
        if self.nme and self.kind != "herding":
            raise ValueError("nme requires kind: herding")
        return self


class StrategySpec(Section):
    """One strategy plugin and its parameters; the registry in ``lifelong.strategies`` checks the names."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


CONTINUOUS_DETECTORS = ("ADWIN", "PageHinkley", "KSWIN")
BINARY_DETECTORS = ("DDM", "EDDM", "HDDMA", "HDDMW", "FHDDM")


class DetectorSpec(Section):
    """A river drift detector attached to a signal; any other key is a parameter of the river class.

    Signals: ``error`` (0/1 per sample), ``class_error`` (one detector per true class), ``loss`` (per-sample
    cross-entropy) and ``input`` (per-feature means over blocks of ``block`` samples, or a seeded random
    projection of each sample to ``dims`` values; one detector per feature or dimension). Binary detectors
    (DDM, EDDM, HDDMA, HDDMW, FHDDM) only make sense on the 0/1 error signals.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    detector: Literal["ADWIN", "PageHinkley", "KSWIN", "DDM", "EDDM", "HDDMA", "HDDMW", "FHDDM"] = Field(
        description="river class: ADWIN, PageHinkley, KSWIN; for 0/1 errors DDM, EDDM, HDDMA, HDDMW, FHDDM",
    )
    signal: Literal["error", "class_error", "loss", "input"] = "error"
    name: str | None = Field(default=None, description="Label in metrics and logs; default detector/signal.")
    input: Literal["mean", "projection"] = Field(
        default="mean", description="signal input: per-feature block means, or a random projection."
    )
    dims: PositiveInt = Field(default=4, description="signal input, projection: dimensions, a detector each.")
    block: PositiveInt | None = Field(
        default=None,
        description="signal input: samples averaged per detector update (default: 32 mean, 1 projection).",
    )

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return self.name or f"{self.detector}/{self.signal}"

    @model_validator(mode="after")
    def _check_signal(self) -> DetectorSpec:
        if self.detector in BINARY_DETECTORS and self.signal not in ("error", "class_error"):
            raise ValueError(f"{self.detector} watches a 0/1 stream: use signal error or class_error, "
                             f"or ADWIN/PageHinkley/KSWIN for signal {self.signal}")
        misplaced = {"input", "dims", "block"} & self.model_fields_set
        if self.signal != "input" and misplaced:
            raise ValueError(f"{', '.join(sorted(misplaced))} only apply to signal input")
        return self


class ReactionSpec(Section):
    """What to do on a drift; other keys are the reaction's parameters (lr_boost: factor, events)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: Literal["boundary", "lr_boost", "reset_optimizer", "reset_detectors", "alert"]

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DriftConfig(Section):
    """Drift detectors, the reactions to a drift, and how detections are merged and reported."""

    detectors: list[DetectorSpec] = Field(default_factory=list)
    reactions: list[ReactionSpec] = Field(default_factory=lambda: [ReactionSpec(name="alert")])
    min_events_between: NonNegativeInt = Field(default=500, description="Drifts closer than this are merged.")
    accuracy_window: PositiveInt = Field(
        default=1000, description="Events over which accuracy before and after a drift is logged."
    )
    warnings: bool = Field(
        default=False,
        description="Also report warning-zone entries (Detection.warning); they trigger no reaction.",
    )

    @model_validator(mode="after")
    def _unique_labels(self) -> DriftConfig:
        labels = [spec.label for spec in self.detectors]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"detector labels must be unique (set `name`): {', '.join(duplicates)}")
        return self


class BoundaryConfig(Section):
    """Where strategies are told a task ended: never from task labels, from drift and/or a schedule."""

    schedule: list[NonNegativeInt] = Field(default_factory=list, description="Event counts at which to consolidate.")
    every_events: PositiveInt | None = Field(default=None, description="Also consolidate every N events.")
    from_drift: bool = True


class MetricsConfig(Section):
    host: str = Field(default="127.0.0.1", description="Bind address of /metrics, /livez, /readyz.")
    port: int = Field(default=9108, ge=0, le=65535, description="0 picks a free port.")
    window: PositiveInt = Field(default=1000, description="Events in the sliding accuracy/loss windows.")
    liveness_timeout_s: PositiveFloat = Field(default=60.0, description="/livez fails when the loop stalls this long.")


class CheckpointConfig(Section):
    dir: Path = Field(default=Path("state/checkpoints"), description="Folder of checkpoints (a volume in k8s).")
    every_events: PositiveInt = Field(default=20_000, description="Checkpoint (then commit) every N events...")
    every_seconds: PositiveFloat = Field(default=60.0, description="...or every T seconds, whichever first "
                                         "(an idle daemon, with nothing learned since the newest one, writes none).")
    keep: PositiveInt = Field(default=3, description="Checkpoints kept; older ones are deleted.")


class DaemonConfig(Section):
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when present.")
    seed: int = Field(default=0, description="Seeds torch, numpy and detectors' projections.")
    deterministic: bool = Field(default=False, description="Deterministic kernels, one CPU thread.")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one object per line.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    summary_interval_s: PositiveFloat = Field(default=10.0, description="Period of the one-line summary log.")
    max_events: PositiveInt | None = Field(default=None, description="Stop after this many events (tests, demos).")
    idle_exit_s: PositiveFloat | None = Field(
        default=None, description="Stop after this long without a record (demos, batch replays)."
    )
    micro_batch: PositiveInt | None = Field(
        default=None, description="Learn in micro-batches of exactly this many events (a multiple of "
        "optim.batch_size makes training independent of how fetches split the stream); none: each poll as it comes.")
    audit_log: Path | None = Field(default=None, description="Append one JSON line per learned micro-batch "
                                   "(first event, size, end offset per partition): what the model learned from.")
    prefetch: NonNegativeInt = Field(default=2, description="Fetch and decode ahead of the learner, off its "
                                     "loop, in fetchers that own the Kafka client (daemon.fetcher; with threads, "
                                     "batches buffered per fetcher); 0: fetch and decode in the loop.")
    fetcher: Literal["process", "thread"] = Field(
        default="process", description="Where prefetch fetches and decodes: process (child processes, one per "
        "fetch worker: the client's Python never holds the learner's GIL) or thread (in the daemon's process: "
        "kafka-python's parsing then stalls the learner's torch calls; see benchmarks/RESULTS.md, ablation). "
        "Children are spawned: a script that embeds the Daemon must start it under `if __name__ == \"__main__\":`.")
    shared_memory: bool = Field(
        default=True, description="With daemon.fetcher: process, hand decoded batches over in shared-memory "
        "blocks (two per fetch process, each the size of one poll's features, in /dev/shm) instead of through "
        "the child's pipe; a child that cannot make a block says so once and uses the pipe.")
    fetch_workers: PositiveInt = Field(
        default=1, description="Fetch processes or threads (with prefetch > 0), each owning a disjoint set of "
        "partitions: group members, or a stable hash of the partition with kafka.assign. More than one only "
        "pays when a single client is the bottleneck and cores are free.")
    torch_threads: NonNegativeInt | None = Field(
        default=None, description="Intra-op CPU threads of torch; none: with prefetch on the CPU, the cores "
        "the fetchers leave (at least 1), else torch's default; 0: torch's default.")
    autocast: Literal["off", "bf16", "auto"] = Field(
        default="off", description="Run predict and train steps under bf16 autocast (CUDA, or CPUs with "
        "bf16 kernels); weights and optimizer stay float32. auto: bf16 on CPUs with AMX-BF16 or AVX512-BF16 "
        "instructions (the MLP benchmark: 1.37x end to end on AMX, 1.55x less learner CPU on AVX512-BF16, same "
        "accuracy; a small CNN learned less under bf16: check your model), off elsewhere.")
    flush_denormal: bool = Field(
        default=True, description="On the CPU, treat subnormal floats as zero (torch.set_flush_denormal): "
        "Adam's moments of weights that never get a gradient (inputs that are always zero, as MNIST's border "
        "pixels) decay into the subnormal range after a few hundred steps, and every step then ran about a "
        "quarter slower (benchmarks/denormals.py). false keeps IEEE subnormals.")
    gc_freeze: bool = Field(
        default=True, description="Once the model and the clients are up, move every object then alive out of "
        "the garbage collector's reach (gc.freeze; the fetch processes too): torch's ~150,000 objects are "
        "otherwise walked again on every full collection that the hot loop's allocations trigger "
        "(benchmarks/RESULTS.md, ablation). Undone when run() returns.")
    reuse_fetch_memory: bool = Field(
        default=True, description="Each fetch process (daemon.fetcher: process) keeps its large fetch buffers "
        "in its heap for reuse (glibc mmap threshold 32 MiB, trim threshold 64 MiB) instead of returning their "
        "pages to the kernel after every fetch and faulting them in again: 1.45x less CPU per record for "
        "kafka-python in a fetch process (lifelong.stream.allocator), for up to about 64 MiB more resident "
        "memory per process. No effect without glibc.")
    compile: bool = Field(default=False, description="torch.compile the model's features and head in place "
                          "(first batches are slow while it compiles; checkpoints are unchanged).")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = Field(
        default="default", description="torch.compile's mode with daemon.compile: reduce-overhead replays CUDA "
        "graphs on a GPU (one per input shape: keep daemon.micro_batch a multiple of optim.batch_size so the "
        "shapes repeat), max-autotune also searches kernels (minutes at start). Not measured on a GPU yet; "
        "on the CPU neither adds to default.")

    @model_validator(mode="after")
    def _compile_mode_needs_compile(self) -> DaemonConfig:
        if self.compile_mode != "default" and not self.compile:
            raise ValueError(f"compile_mode {self.compile_mode!r} applies only with compile: true")
        return self


class Settings(BaseSettings):
    """The whole configuration of one daemon."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    codec: CodecConfig = Field(default_factory=CodecConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    strategies: list[StrategySpec] = Field(default_factory=list)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    boundaries: BoundaryConfig = Field(default_factory=BoundaryConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)

    @model_validator(mode="after")
    def _features_fit_the_model(self) -> Settings:
        """Records are checked against codec.num_features and fed to the model: sizes that disagree would pass
        every record and then fail the first training step, and again after every restart."""
        expected = self.codec.num_features
        if expected is not None and expected != self.num_features:
            raise ValueError(f"codec.num_features {expected} does not fit model.input_shape {self.model.input_shape} "
                             f"({self.num_features} features)")
        return self

    @property
    def num_features(self) -> int:
        """What every record must hold and the model takes: model.input_shape's size (codec.num_features, when
        set, is checked equal to it above). A record of any other size is dead-lettered."""
        return math.prod(self.model.input_shape)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first so that it overrides the file passed as init kwargs.
        return (env_settings, init_settings)

    #: What a checkpoint's state is shaped by: another value here and the saved tensors no longer fit. Tuning the
    #: rest (the replay ratio, a codec setting, the optimizer) keeps the model. The strategies count whole: some
    #: of their parameters size a memory of their own (A-GEM's and DER++'s ``memory``).
    STATE_KEYS: ClassVar[dict[str, set[str]]] = {
        "model": {"name", "input_shape", "hidden", "max_classes"},
        "replay": {"kind", "capacity", "nme", "generator_latent", "generator_hidden"},
    }

    def digest(self) -> str:
        """A short hash of what shapes the learner's state, stored in checkpoints to refuse ones that cannot fit:
        :data:`STATE_KEYS` and the strategies."""
        return self._hash(include={**self.STATE_KEYS, "strategies": True})

    def legacy_digest(self) -> str:
        """The digest checkpoints were written with up to lifelong 2026-12-02: every key of model, codec, replay
        and strategies. Still accepted, so that those checkpoints resume."""
        return self._hash(include={"model", "codec", "replay", "strategies"})

    def _hash(self, include: Any) -> str:
        relevant = self.model_dump(mode="json", include=include)
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


_NAMED_KEY = re.compile(r"^([a-z_]+\.[a-z_]+) (.+)$", re.DOTALL)


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    out = []
    for item in error.errors():
        key = ""
        for part in item["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "unknown key"
        elif item["type"] == "value_error" and "error" in item.get("ctx", {}):
            reason = str(item["ctx"]["error"])  # our validator's own sentence, without pydantic's "Value error, "
        named = _NAMED_KEY.match(reason) if not key else None
        if named:  # a check across sections names the key it blames first
            key, reason = named.group(1), named.group(2)
        key = key or "(root)"
        out.append((key, reason))
    return out


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it, section into section: a key not overridden keeps its value."""
    out = dict(base)
    for key, value in overrides.items():
        below = out.get(key)
        out[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (YAML) if given, lay ``overrides`` over it (``model={"hidden": [64]}`` changes that key
    and keeps the rest of the file's ``model`` section), apply environment overrides, validate as a whole;
    raise ConfigError on any problem."""
    data: dict[str, Any] = {}
    source = str(path) if path is not None else "(defaults)"
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(source, [("(file)", exc.strerror or str(exc))]) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(source, [("(yaml)", str(exc))]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, [("(root)", "the file must hold a mapping of sections")])
        data = loaded
    data = _merged(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from exc
