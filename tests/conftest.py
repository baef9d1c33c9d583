"""Shared fixtures: the packaged catalog, the shared corpus location, an X12 builder."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

import gateway.x12.ack.build as ack_build
from gateway.resources import load_catalog
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"

# The parsed-definitions cache of this test session (and of the commands it starts): not the user's
# ~/.cache, and every load after the first goes through the cache, as a user's commands do.
os.environ.setdefault("GATEWAY_CACHE_DIR", tempfile.mkdtemp(prefix="gateway-test-cache-"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The packaged definitions, loaded once."""
    return load_catalog()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """``../shared/corpus``; skips (fails under CI=true) when it is absent."""
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared corpus is missing at {CORPUS}")
        pytest.skip(f"../shared/corpus is not beside the repository ({CORPUS})")
    return CORPUS


def control_sequence(interchange: int = 0, group: int = 0, set_: int = 0) -> Callable[[str], int]:
    """A control-number sequence for the writer: each call returns the next number of that kind."""
    last = {"interchange": interchange, "group": group, "set": set_}

    def next_control(kind: str) -> int:
        last[kind] += 1
        return last[kind]

    return next_control


ISA_4010 = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261123*1200*U*00401*000000905*0*P*>"
ISA_5010 = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261123*1200*^*00501*000000905*1*T*:"


def interchange(
    sets: list[list[str]],
    *,
    functional_id: str = "PO",
    version: str = "004010",
    isa: str = ISA_4010,
    term: str = "~\n",
    set_ids: list[str] | None = None,
) -> bytes:
    """An interchange with one group; ``sets`` are body segments (no ST/SE), counts computed."""
    out = [isa, f"GS*{functional_id}*SENDER*RECEIVER*20261123*1200*77*X*{version}"]
    for n, body in enumerate(sets, 1):
        control = f"{n:04d}"
        set_id = (
            (set_ids or [])[n - 1] if set_ids else {"PO": "850", "PR": "855", "SH": "856", "IN": "810"}[functional_id]
        )
        out.append(f"ST*{set_id}*{control}")
        out.extend(body)
        out.append(f"SE*{len(body) + 2}*{control}")
    out.append(f"GE*{len(sets)}*77")
    out.append(f"IEA*1*{isa.split('*')[13]}")
    return (term.join(out) + term).encode()


PO_850 = [
    "BEG*00*SA*4500012345**20261123",
    "REF*DP*ICU",
    "N1*ST*MERCY GENERAL*92*MGH01",
    "PO1*1*10*BX*42.50**VN*GLV-NIT-M*IN*100234",
    "PID*F****NITRILE GLOVES",
    "PO1*2*4*CA*118**VN*SYR-10ML",
    "CTT*2",
]


# --- PostgreSQL for the store and runtime tests -------------------------------------------------

PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where the database servers must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def schema_url(schema: str) -> str:
    """``PG_URL`` with its connections' search_path set to ``schema``."""
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session", name="pg_admin")
def pg_admin_fixture() -> Iterator[Engine]:
    """An engine on the test database, for creating and dropping schemas."""
    engine = create_engine(make_url(PG_URL).update_query_dict({"connect_timeout": "3"}), poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        unavailable(f"PostgreSQL is not reachable at {PG_URL}: {str(exc.orig).strip().splitlines()[0]}")
    yield engine
    engine.dispose()


# --- MariaDB/MySQL for the staging loader's tests ---------------------------------------------

MYSQL_URL = os.environ.get("GATEWAY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")


@pytest.fixture(scope="session", name="mysql_admin")
def mysql_admin_fixture() -> Iterator[Engine]:
    """An engine on the MariaDB/MySQL test database; skips (fails under CI=true) when it is absent."""
    try:
        import pymysql  # noqa: F401 - the driver comes with the test extra
    except ImportError:
        unavailable("PyMySQL is not installed (pip install -e '.[test]')")
    engine = create_engine(make_url(MYSQL_URL).update_query_dict({"connect_timeout": "3"}), poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        unavailable(f"MariaDB/MySQL is not reachable at {MYSQL_URL}: {str(exc.orig).strip().splitlines()[0]}")
    yield engine
    engine.dispose()


# --- every acknowledgment the suite produces must validate (issue 9) ---------------------------

ACK_FILE = re.compile(r"(997|999|TA1)-[^/]*\.x12")


def _ack_files(root: Path) -> Iterator[Path]:
    """Acknowledgments written under ``root`` by runs (in-process or ``gateway run`` subprocesses)."""
    for path in root.rglob("*.x12"):
        if ACK_FILE.fullmatch(path.name) and "outbox" in path.parts and path.is_file():
            yield path


def _ack_problems(catalog: Catalog, produced: dict[bytes, str]) -> list[str]:
    """Each produced ack that our own validator rejects, with where it came from and why."""
    validator = Validator(catalog)
    problems: list[str] = []
    for data, origin in produced.items():
        report = validator.validate(data)
        if report.valid:
            continue
        errors = [str(f) for f in report.findings if f.is_error]
        for ic in report.interchanges:
            errors += [str(f) for f in ic.findings if f.is_error]
            errors += [str(f) for g in ic.groups for f in g.findings if f.is_error]
            errors += [str(f) for s in ic.sets() for f in s.findings if f.is_error]
        problems.append(f"{origin}: {errors[:3]}\n    {data[:300]!r}")
    return problems


ACKS_CHECKED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """How many acknowledgments the session check validated."""
    checked = config.stash.get(ACKS_CHECKED, None)
    if checked is not None:
        terminalreporter.write_line(f"every ack validates: {checked} distinct 997/999/TA1 checked")


@pytest.fixture(scope="session", autouse=True)
def every_ack_validates(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[dict[bytes, str]]:
    """Collects every 997/999/TA1 the session builds, then validates them all with the gateway's Validator.

    In-process: the ack builder's writer is wrapped for the session (``build_acks`` calls it through its
    module, so every caller is covered: the runtime, ``gateway ack`` through click's runner, the tests).
    Subprocesses: the ack files ``gateway run`` wrote under the session's temporary folders. One invalid
    ack fails the session (an error in the last test's teardown), naming the test that produced it.
    """
    produced: dict[bytes, str] = {}
    original = ack_build.write_interchange

    def recording(*args: Any, **kwargs: Any) -> bytes:
        data = original(*args, **kwargs)
        produced.setdefault(data, os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0])
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ack_build, "write_interchange", recording)
        yield produced
    for path in _ack_files(tmp_path_factory.getbasetemp()):
        produced.setdefault(path.read_bytes(), str(path))
    problems = _ack_problems(catalog, produced)
    pytestconfig.stash[ACKS_CHECKED] = len(produced)
    if problems:
        pytest.fail(
            f"{len(problems)} of {len(produced)} acknowledgments the suite produced are invalid:\n"
            + "\n".join(problems)
        )
