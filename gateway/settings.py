"""``gateway.yaml``: the deployment's settings, with embedded defaults when the file is absent.

Every path is relative to the deployment folder (``--home``, ``$GATEWAY_HOME``
or the current folder). Unknown keys are errors with ``file:line:col``.
:data:`EXAMPLE` is a complete file with every key at its default; ``gateway init``
writes it and ``docs/deploy.md`` shows it (a test keeps the three in step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.delivery.base import SecretRef
from gateway.mapping.marked import MarkedYamlError, MDict, load_marked
from gateway.mapping.problems import Problems, validate_marked
from gateway.reconcile.config import ReconciliationConfig
from gateway.routing import Match, Rule

#: A complete ``gateway.yaml``: every key, each at its default, with what it does.
EXAMPLE = """\
# gateway.yaml: every key, at its default (delete what you do not change).
store: sqlite:///var/gateway.db        # or postgresql+psycopg://gateway@db.example/gateway (several workers)
folders:                                # relative to this file's folder
  inbox: inbox                          # inbox/<partner>/ and inbox/ itself
  outbox: outbox                        # acks to outbox/<partner>/, canonical JSON to outbox/canonical/
  send: send                            # our canonical purchase orders (JSON) in send/<partner>/ go out as 850s
  archive: var/archive                  # content-addressed, never modified
  quarantine: var/quarantine            # files that could not be taken, with the reason in the ledger
  processed: var/processed              # where taken files go (after: move); may be on another file system
  run: var/run                          # what the service reports for `gateway status` (intake problems)
  maps: maps                            # base maps; absent: the maps shipped with the gateway
  partners: partners                    # partners/<id>.yaml and partners/<id>/
intake:
  after: move                           # move | delete: what happens to a file once archived and recorded
  stable_seconds: 30                    # without a close-after-write event (inotify) or a free write lease:
                                        # unchanged this long before a file is taken (profiles: inbound.stable_seconds)
  rescan_seconds: 5                     # periodic rescan, for events the watcher missed
  retry_seconds: 300                    # a file that could not be taken or moved out is left this long
  ignore: [".*", "*.part", "*.tmp", "*.filepart", "*.partial"]
processing:
  worker: null                          # this process's name in leases (default host:pid)
  lease_seconds: 60                     # a dead worker's files are taken over after this
  batch: 32                             # files taken and processed together (one transaction, one sync)
  max_attempts: 5                       # a file whose worker died this often is quarantined, not retried
  max_errors: 100                       # errors listed per transaction set
  sync: group                           # group: one syncfs per batch; each: fsync every file (see durable.py)
  poll_seconds: 0.2                     # how often an idle worker looks for files another worker received
  store_stall_seconds: 10               # a store call with no answer this long is logged
  store_timeout_seconds: 90             # ... and cut this long (then retried after a back-off)
  sla_check_seconds: 300                # reconcile chains still waiting for an 855/856/810 (overdue SLAs); 0: never
  delivery_workers: 0                   # N > 0: N processes of their own deliver (a core each); 0: threads
duplicates:
  isa13_window_days: 30                 # partner profiles may override; 0 turns the ISA13 check off
destinations:                           # where documents go, by name (see docs/routing.md); replaces the default
  canonical-json:
    type: files                         # a component: `gateway config lint` lists what is wrong with each
    folder: outbox/canonical            # relative to this file's folder
    name: "{partner}/{doc_type}-{file_id}-{position}.json"
routes:                                 # tried in order (a partner profile's routes first, for its documents)
  - name: default
    match: {direction: inbound}         # also partner, doc_type, test, where: [{path, op, value}]
    to: [canonical-json]                # one or more destinations
    stop: true                          # the first matching rule wins; false: later rules may add destinations
reconciliation: null                    # PO/855/856/810 tolerances, SLAs, unit conversions (docs/reconciliation.md)
retention:
  keep_days: 0                          # `gateway archive purge` never purges files younger (profiles: retention)
web: null                               # `gateway web`: session secret, users and roles, proxy header (docs/web.md)
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Folders(_Strict):
    """Where things live, relative to the deployment folder."""

    inbox: str = "inbox"
    outbox: str = "outbox"
    send: str = Field(
        default="send",
        description="Canonical purchase orders (JSON) dropped in send/<partner>/ go out as that partner's 850.",
    )
    archive: str = "var/archive"
    quarantine: str = "var/quarantine"
    processed: str = "var/processed"
    run: str = "var/run"
    maps: str = "maps"
    partners: str = "partners"


class Intake(_Strict):
    """How files are taken from the inbox."""

    after: Literal["move", "delete"] = "move"
    stable_seconds: float = Field(default=30.0, ge=0)
    rescan_seconds: float = Field(default=5.0, gt=0)
    retry_seconds: float = Field(default=300.0, gt=0)
    ignore: list[str] = Field(default_factory=lambda: [".*", "*.part", "*.tmp", "*.filepart", "*.partial"])


class Processing(_Strict):
    """How files are processed."""

    worker: str | None = None
    lease_seconds: float = Field(default=60.0, gt=0)
    batch: int = Field(default=32, ge=1, le=1000)
    max_attempts: int = Field(default=5, ge=1)
    max_errors: int = Field(default=100, ge=1)
    sync: Literal["group", "each"] = "group"
    poll_seconds: float = Field(default=0.2, gt=0)
    store_stall_seconds: float = Field(default=10.0, gt=0)
    store_timeout_seconds: float = Field(default=90.0, gt=0)
    sla_check_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How often `gateway run` reconciles the PO chains still waiting for a document, so "
        "time-based exceptions (no 855/856/810 in time) open without a new document; one worker at a time. "
        "0: never (then schedule `gateway recon run`).",
    )
    delivery_workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="0: `gateway run` delivers what it records itself, on threads beside processing. N: N "
        "processes of their own deliver it (another core each: processing no longer shares its "
        "interpreter with the deliveries); they stop with the service.",
    )


class Duplicates(_Strict):
    """Defaults for duplicate detection (partner profiles may override)."""

    isa13_window_days: int = Field(default=30, ge=0)


class Retention(_Strict):
    """How long archived bytes and ledger detail are kept at least (see docs/retention.md)."""

    keep_days: int = Field(default=0, ge=0)


def default_destinations() -> dict[str, dict[str, Any]]:
    """The shipped destinations: canonical JSON files in ``outbox/canonical/``, as before routing."""
    return {
        "canonical-json": {
            "type": "files",
            "folder": "outbox/canonical",
            "name": "{partner}/{doc_type}-{file_id}-{position}.json",
        }
    }


def default_routes() -> list[Rule]:
    """The shipped route: every inbound document to ``canonical-json``."""
    return [Rule(name="default", match=Match(direction="inbound"), to=["canonical-json"])]


class WebUser(_Strict):
    """A dashboard user: a role and an argon2 hash (``gateway web hash-password``), never a password."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Literal["viewer", "operator", "admin"] = "viewer"
    password_hash: str | None = Field(
        default=None, pattern=r"^\$argon2(id|i|d)\$", description="None: signs in only through trusted_header."
    )


class Web(_Strict):
    """``gateway web``: who may sign in, with which role, and what signs the session cookies (docs/web.md)."""

    secret: SecretRef | None = Field(default=None, description="Signs session cookies; absent: random per process.")
    users: list[WebUser] = Field(default_factory=list)
    trusted_header: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]+$", description="The reverse proxy's header naming the signed-in user."
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    secure_cookie: bool = Field(default=False, description="Mark the session cookie Secure (served over HTTPS).")

    @model_validator(mode="after")
    def _unique_names(self) -> Web:
        seen = [u.name for u in self.users]
        twice = sorted({n for n in seen if seen.count(n) > 1})
        if twice:
            raise ValueError(f"web user(s) listed twice: {', '.join(twice)}")
        return self


class Settings(_Strict):
    """The whole ``gateway.yaml``."""

    store: str = "sqlite:///var/gateway.db"
    folders: Folders = Field(default_factory=Folders)
    intake: Intake = Field(default_factory=Intake)
    processing: Processing = Field(default_factory=Processing)
    duplicates: Duplicates = Field(default_factory=Duplicates)
    destinations: dict[str, dict[str, Any]] = Field(
        default_factory=default_destinations,
        description="Destinations by name: `type` names the component, the other keys are its settings "
        "(checked against the component's model by `gateway config lint`).",
    )
    routes: list[Rule] = Field(default_factory=default_routes, description="Routing rules, tried in order.")
    reconciliation: ReconciliationConfig | None = Field(
        default=None, description="Global reconciliation settings; partner profiles layer theirs over these."
    )
    retention: Retention = Field(default_factory=lambda: Retention())
    web: Web | None = Field(default=None, description="The dashboard's users and session secret (docs/web.md).")


class Deployment:
    """Settings bound to a deployment folder: absolute paths and the store URL."""

    def __init__(self, home: Path, settings: Settings) -> None:
        self.home = home.resolve()
        self.settings = settings

    def path(self, name: str) -> Path:
        """A folder from ``folders`` as an absolute path."""
        return self.home / str(getattr(self.settings.folders, name))

    @property
    def store_url(self) -> str:
        """The store URL; a relative SQLite path is taken from the deployment folder."""
        url = self.settings.store
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.home / url[len(prefix) :])
        return url


def load_settings(home: Path, file: Path | None = None) -> tuple[Deployment, Problems]:
    """Read ``gateway.yaml`` (or ``file``) under ``home``; defaults when absent. Problems are returned."""
    problems = Problems()
    path = file or home / "gateway.yaml"
    if not path.exists():
        if file is not None:
            problems.add("CFG-001", f"no settings file {path}", None)
        return Deployment(home, Settings()), problems
    try:
        raw = load_marked(path.read_text("utf-8"), str(path))
    except MarkedYamlError as exc:
        problems.add("CFG-002", f"not valid YAML: {exc.reason}", exc.mark)
        return Deployment(home, Settings()), problems
    if raw is None:
        return Deployment(home, Settings()), problems
    if not isinstance(raw, MDict):
        problems.add("CFG-003", "gateway.yaml must be a mapping", None)
        return Deployment(home, Settings()), problems
    settings = validate_marked(Settings, raw, problems, "CFG-004")
    return Deployment(home, settings or Settings()), problems
