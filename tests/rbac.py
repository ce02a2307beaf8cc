"""What the roles in ``deploy/`` grant, and the session-wide RBAC check over every worker.

Each pytest process (the whole run, or one pytest-xdist worker) records in module globals of
``tests.fakeazure`` every RBAC operation its FakeAzure servers served and every request no entry
of the table names. At the end of its session a worker writes them to a file of its own in a
directory the controller handed it; the controller (or the only process) then reads them all and
checks them against ``deploy/azure-role.json`` (see ``tests/conftest.py``). So the check covers
whatever ran, in any order and on any number of workers, instead of depending on one test that
runs last in one process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests import fakeazure

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"

# Azure Storage REST operations the lease and the shared state use, and the permission each one
# names in its "Permissions" section on Microsoft Learn: Create Container
# (learn.microsoft.com/rest/api/storageservices/create-container: containers/write), Put Blob
# (.../put-blob: blobs/write, or blobs/add/action for a new blob only; the state blob is also
# overwritten, so blobs/write), Lease Blob (.../lease-blob: blobs/write), Set Blob Metadata
# (.../set-blob-metadata: blobs/write), Get Blob and Get Blob Properties (blobs/read).
_BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOB_OPERATIONS: tuple[tuple[str, str | None, str | None, str], ...] = (
    # (method, restype, comp, operation)
    ("PUT", "container", None, f"{_BLOB}/write"),
    ("PUT", None, None, f"data:{_BLOB}/blobs/write"),
    ("PUT", None, "lease", f"data:{_BLOB}/blobs/write"),
    ("PUT", None, "metadata", f"data:{_BLOB}/blobs/write"),
    ("HEAD", None, None, f"data:{_BLOB}/blobs/read"),
    ("GET", None, None, f"data:{_BLOB}/blobs/read"),
)


def blob_operation(method: str, query: dict[str, list[str]]) -> str | None:
    restype = (query.get("restype") or [None])[0]
    comp = (query.get("comp") or [None])[0]
    for m, r, c, operation in BLOB_OPERATIONS:
        if (m, r, c) == (method, restype, comp):
            return operation
    return None


def granted(*files: str) -> set[str]:
    """A role's ``Actions`` and ``DataActions`` (``data:`` prefixed), lower-cased: RBAC
    operation names are case-insensitive."""
    out: set[str] = set()
    for name in files:
        role = json.loads((DEPLOY / name).read_text())
        assert not role["NotActions"] and not role["NotDataActions"]
        assert all("*" not in a for a in role["Actions"] + role["DataActions"]), "no wildcards"
        out |= {a.lower() for a in role["Actions"]}
        out |= {"data:" + a.lower() for a in role["DataActions"]}
    return out


def dump_observed(directory: Path, worker: str) -> None:
    """Write this process's observed operations and unmapped requests for the controller."""
    (directory / f"rbac-{worker}.json").write_text(
        json.dumps(
            {
                "observed": sorted(fakeazure.OBSERVED_OPERATIONS),
                "unmapped": sorted(set(fakeazure.UNMAPPED_REQUESTS)),
            }
        ),
        encoding="utf-8",
    )


def session_problems(directory: Path) -> list[str]:
    """What the role lacks for any operation a worker saw, and requests that reached a real
    endpoint of the fake without an RBAC mapping (paths tests invented to provoke 404s are not
    endpoints). Empty when every worker's requests are covered."""
    observed: set[str] = set()
    unmapped: set[str] = set()
    for part in sorted(directory.glob("rbac-*.json")):
        doc = json.loads(part.read_text(encoding="utf-8"))
        observed |= {op.lower() for op in doc["observed"]}
        unmapped |= set(doc["unmapped"])
    problems = [
        f"the role in deploy/azure-role.json lacks {op}, which a test's request needed"
        for op in sorted(observed - granted("azure-role.json"))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        routes = fakeazure.FakeAzure(Path(tmp))._routes
    for line in sorted(unmapped):
        method, path = line.split(" ", 1)
        if any(r.method == method and r.pattern.fullmatch(path) for r in routes):
            problems.append(f"no RBAC mapping in tests/fakeazure.py for {line}")
    return problems
