"""A PostgreSQL server for the tests: `CRM_TEST_POSTGRES_URL`, or a throwaway cluster.

The cluster is made with `initdb` and started with `pg_ctl` (on PATH or under
/usr/lib/postgresql/*/bin), as the `postgres` system user when running as root (PostgreSQL
refuses root), listening only on a unix socket in a temporary directory. Without a server
the PostgreSQL tests are skipped, unless `CRM_REQUIRE_POSTGRES=1` makes that a failure.
"""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

import pytest


def _binaries() -> Optional[Path]:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.isfile(os.path.join(folder, "initdb")) and os.path.isfile(
            os.path.join(folder, "pg_ctl")
        ):
            return Path(folder)
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("CRM_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"CRM_REQUIRE_POSTGRES=1 but no PostgreSQL server: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("CRM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir = _binaries()
    if bin_dir is None:
        _unavailable("no initdb/pg_ctl on PATH or under /usr/lib/postgresql")
        return
    as_user: List[str] = []
    root = Path(tempfile.mkdtemp(prefix="crm-pg-py-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", "5432"

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"{args[0]} failed: {done.stderr.strip()}")

    options = f"-c listen_addresses='' -k {root} -p {port} -c fsync=off"
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-locale")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start")
        yield f"host={root} port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
