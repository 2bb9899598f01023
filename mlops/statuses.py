"""The one status vocabulary: the ledger's statuses, SageMaker's pipeline execution statuses, and the mapping.

- **Ledger** (an execution item's `status`, docs/trigger.md): QUEUED → STARTING → EXECUTING (→ STOPPING) →
  SUCCEEDED | FAILED | STOPPED, ranked so that a write only moves forward; REJECTED is a refused upload's
  record, no execution. The retraining check's state item lists the builds queued or running as ACTIVE.
- **SageMaker** (`PipelineExecutionStatus`, the status-change events): Executing, Stopping, Succeeded,
  Failed, Stopped.
- **Other recorders' words**, which the retraining check also reads from a ledger (requested, pending,
  admitted, running, completed, in any case): `normalize` gives each its ledger status.

Pure: every reader of a status compares against these names, never against its own literals.
"""

from __future__ import annotations

from typing import Literal

# -- the ledger ------------------------------------------------------------------------------------
QUEUED, STARTING, EXECUTING, STOPPING = "QUEUED", "STARTING", "EXECUTING", "STOPPING"
SUCCEEDED, FAILED, STOPPED = "SUCCEEDED", "FAILED", "STOPPED"
#: A tenant's upload the trigger refused (its own record beside the executions, never an execution).
REJECTED = "REJECTED"
#: The ledger statuses of an execution, in the order a build goes through them.
LEDGER = (QUEUED, STARTING, EXECUTING, STOPPING, SUCCEEDED, FAILED, STOPPED)
#: Ranks: a status write is conditional on the item's rank being lower than the new one's.
RANK = {QUEUED: 10, STARTING: 20, EXECUTING: 30, STOPPING: 40, SUCCEEDED: 50, FAILED: 50, STOPPED: 50}
TERMINAL = frozenset({SUCCEEDED, FAILED, STOPPED})
#: Waiting for a slot or running: a new build of the same tenant x model waits for it.
ACTIVE = frozenset({QUEUED, STARTING, EXECUTING, STOPPING})
#: How the retraining check's state item reports a build of its `active` set (queued or running).
ACTIVE_BUILD = "ACTIVE"

# -- SageMaker ------------------------------------------------------------------------------------
SM_EXECUTING, SM_STOPPING, SM_SUCCEEDED, SM_FAILED, SM_STOPPED = "Executing", "Stopping", "Succeeded", "Failed", "Stopped"
SageMakerStatus = Literal["Executing", "Stopping", "Succeeded", "Failed", "Stopped"]
#: SageMaker's statuses of an execution that has ended.
SAGEMAKER_TERMINAL = (SM_SUCCEEDED, SM_FAILED, SM_STOPPED)
#: A SageMaker status as the ledger records it.
FROM_SAGEMAKER = {SM_EXECUTING: EXECUTING, SM_STOPPING: STOPPING, SM_SUCCEEDED: SUCCEEDED, SM_FAILED: FAILED,
                  SM_STOPPED: STOPPED}


#: Other recorders' words for a ledger status (lower case).
ALIASES = {"requested": QUEUED, "pending": QUEUED, "admitted": STARTING, "running": EXECUTING, "completed": SUCCEEDED}
_BY_WORD = {word.lower(): status for word, status in
            [*((s, s) for s in (*LEDGER, REJECTED, ACTIVE_BUILD)), *FROM_SAGEMAKER.items(), *ALIASES.items()]}


def normalize(status: str | None) -> str | None:
    """Any status word (the ledger's, SageMaker's, the state item's ACTIVE, another recorder's), in any case, as the
    ledger's status; None for a word none of them uses."""
    return _BY_WORD.get(str(status or "").lower())


def is_active(status: str | None) -> bool:
    """Waiting for a slot or running (the state item's ACTIVE included), whoever wrote the word."""
    found = normalize(status)
    return found in ACTIVE or found == ACTIVE_BUILD


def is_succeeded(status: str | None) -> bool:
    """A build that produced a model, whoever wrote the word."""
    return normalize(status) == SUCCEEDED
