"""The build use cases: what the trigger, dispatcher and status Lambdas do, without the Lambda.

- `trigger.Trigger` (trigger): check a request against the registry, record it exactly once, then start it
  at once if its tier has a free slot and nobody waits, or queue it on the tier's queue; a message of the
  uploads queue goes through the upload policy (`mlops.uploads`) first.
- `dispatcher.Dispatcher` (dispatcher, on a schedule): per tier by priority, under a short tier lease, file
  the tier queue's requests into the tier's fair backlog (start tags, `mlops.admission`), then admit the
  backlog's head into the free slots and start them; now and then repair what lost messages left behind.
- `status.StatusRecorder` (status): apply a SageMaker status-change event (forward only, so duplicates and
  late events do nothing) and, on the terminal one, hand the slot to the backlog's head or release it, and
  notify.

They act through `ports`: the build store (the ledger and the tier slots, one intent per method, typed
answers), the queues and the pipeline ports. Exactly once, by construction: the only way to a pipeline
start is winning the store's admission of a request that is new or still QUEUED; losers never call the start
port. A start whose dispatcher died is retaken after a lease by one claimant, which asks the `find` port
whether the execution exists before starting it again with the same ClientRequestToken.

`wiring` composes them: `BuildService` (the three over one store), `service_from_env` with the DynamoDB store
(`mlops.aws.build_store`), the SQS queues and the pipeline ports (`mlops.pipeline.ports`), and
`current_service` / `use_service` for the handlers.
"""

from mlops.builds.context import DispatchSettings, Outcome
from mlops.builds.dispatcher import MAX_ADMISSIONS_PER_ROUND, DispatchReport
from mlops.builds.wiring import (BuildService, HandlerConfig, consume, current_service, ledger_from_env, pipeline_ports,
                                 service_from_env, use_service)

__all__ = ["MAX_ADMISSIONS_PER_ROUND", "BuildService", "DispatchReport", "DispatchSettings", "HandlerConfig", "Outcome", "consume",
           "current_service", "ledger_from_env", "pipeline_ports", "service_from_env", "use_service"]
