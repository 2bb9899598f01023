"""SageMaker endpoints on the local AWS: real model servers behind the endpoint and runtime APIs.

moto records an endpoint InService at once, answers UpdateEndpoint with HTTP 500 and InvokeEndpoint with a
canned body. This WSGI middleware sits in front of moto in the local AWS process (`mlops.local.server`) and
serves each endpoint with a local model server (`mlops.local.serving`), so the product deploys and invokes
with boto3 alone, making the calls it makes on SageMaker:

- CreateEndpoint: moto records the endpoint; it is `Creating` while a thread of this process starts a
  server for the endpoint config's model (the model package's or container's `ModelDataUrl`, inference code
  and `Environment`, downloaded as the model's execution role), checks its health (`GET /ping`) and makes
  it live: then `InService`, or `Failed` with the reason.
- UpdateEndpoint: `Updating` while the same work starts green from the new config, checks its health,
  moves the traffic to it and stops blue. A green that fails is stopped and blue keeps serving: the
  endpoint is `InService` on the old config with a `FailureReason`, as after SageMaker's auto-rollback.
  Refused while the endpoint is Creating or Updating, and when it is Failed. Not copied: the
  `DeploymentConfig` (traffic moves at once after the health check, without canary or linear steps, bake
  time or alarm watching; blue stops at once, not after `TerminationWaitInSeconds`).
- DescribeEndpoint: moto's answer with this stand-in's status, failure reason, time and the endpoint
  config that really serves. Not copied: `PendingDeploymentSummary`; the variants are the first config's.
- DeleteEndpoint: moto forgets the endpoint and its server is stopped.
- InvokeEndpoint (`sagemaker-runtime`, `POST /endpoints/<name>/invocations`): forwarded to the endpoint's
  server. An error of the inference code comes back as SageMaker's `ModelError` (HTTP 424 with
  `OriginalStatusCode` and `OriginalMessage`), and the server's log goes to CloudWatch Logs
  (`/aws/sagemaker/Endpoints/<name>`, stream `AllTraffic/<server folder>`); a server that died is started
  again first, as SageMaker replaces a failed instance. Not copied: asynchronous and streaming
  invocations, CloudWatch metrics.

Tenant isolation: on AWS a tenant's roles may call only their tenant's endpoints. Here the caller is the
principal of the request's access key (STS GetCallerIdentity through this server); a role or user tagged
`mlops:tenant` is refused (`AccessDeniedException`) an endpoint whose `mlops:tenant` tag names another
tenant, and a model server answers only requests for its own endpoint and tenant.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops.aws import errors
from mlops.errors import MlopsError
from mlops.local.processes import pid_alive
from mlops.local.serving import LocalEndpoints, LocalServer, Reply, prepare_version
from mlops.local.wsgi import Answer, answer_of, json_request

LOG = logging.getLogger("mlops.local.endpoints_api")
TARGET_PREFIX = "SageMaker."
TENANT_TAG = "mlops:tenant"
VARIANT = "AllTraffic"
BUSY = ("Creating", "Updating")
_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]*/([^/]*)/")
_ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]*:sagemaker:[^:]*:(\d{12}):")

StartResponse = Callable[..., Any]


@dataclass
class _Endpoint:
    """What the stand-in knows of one endpoint beyond moto's record."""

    arn: str
    name: str
    region: str
    tenant: str
    status: str
    config: str
    modified: float
    failure: str | None = None

    @property
    def account(self) -> str:
        """The account of the endpoint (from its ARN)."""
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class _Caller:
    """Who signed a request: the principal's ARN and the tenant its `mlops:tenant` tag names, if any."""

    arn: str
    tenant: str | None


class _Failed(Exception):
    """A server for an endpoint config could not be started or is not healthy."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _probe(environ: dict[str, Any], operation: str, document: dict[str, Any]) -> dict[str, Any]:
    """A SageMaker API request for `operation`, signed as `environ` was (same caller, account and region)."""
    body = json.dumps(document).encode()
    probe = dict(environ)
    probe.update({"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "REQUEST_URI": "/", "RAW_URI": "/",
                  "HTTP_X_AMZ_TARGET": TARGET_PREFIX + operation, "CONTENT_TYPE": "application/x-amz-json-1.1",
                  "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    return probe


def _send(start_response: StartResponse, status: str, document: dict[str, Any] | bytes,
          headers: list[tuple[str, str]] | None = None, content_type: str = "application/x-amz-json-1.1") -> list[bytes]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


def _error(start_response: StartResponse, code: str, message: str, status: str = "400 Bad Request",
           **fields: Any) -> list[bytes]:
    """An AWS error as both SageMaker protocols carry it (JSON 1.1 `__type`, REST JSON `x-amzn-ErrorType`)."""
    return _send(start_response, status, {"__type": code, "message": message, "Message": message, **fields},
                 [("x-amzn-ErrorType", code)])


def _tenant_of(tags: list[dict[str, str]]) -> str:
    return next((t.get("Value", "") for t in tags if t.get("Key") == TENANT_TAG), "")


class EndpointsApi:
    """WSGI middleware: SageMaker endpoints served by local model servers."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, state_dir: Path, endpoint_url: Callable[[], str],
                 start_timeout: float = 60.0):
        self.app = app
        self.servers = LocalEndpoints(state_dir, start_timeout=start_timeout)
        self.endpoint_url = endpoint_url
        self._endpoints: dict[str, _Endpoint] = {}  # by endpoint ARN
        self._lock = threading.Lock()
        self._work: dict[str, threading.Lock] = {}  # by endpoint name: one start, switch or stop at a time
        self._callers: dict[str, _Caller] = {}  # by access key id
        self._clients: dict[tuple[str, str], Any] = {}
        self._published: dict[str, int] = {}  # server log -> bytes already put into CloudWatch Logs

    # -- WSGI ---------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "POST":
            invocation = _INVOCATIONS.match(path)
            if invocation:
                return self._invoke(environ, start_response, invocation.group(1))
            if path == "/moto-api/reset":
                self._reset()
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        handler = {"CreateEndpoint": self._create, "UpdateEndpoint": self._update, "DescribeEndpoint": self._describe,
                   "DeleteEndpoint": self._delete}.get(target[len(TARGET_PREFIX):]) if target.startswith(TARGET_PREFIX) else None
        if handler is None:
            return self.app(environ, start_response)
        request = json_request(environ)
        if request is None:
            return self.app(environ, start_response)  # moto answers a malformed body as AWS does
        return handler(environ, start_response, request)

    def _moto(self, environ: dict[str, Any], operation: str, document: dict[str, Any]) -> Answer:
        return answer_of(self.app, _probe(environ, operation, document))

    @staticmethod
    def _pass(start_response: StartResponse, answer: Answer) -> list[bytes]:
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    # -- the control plane --------------------------------------------------------------------------
    def _create(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        name, config = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        tenant = _tenant_of(request.get("Tags") or [])
        caller, region = self._caller(environ), _region(environ)
        if caller.tenant is not None and caller.tenant != tenant:  # a caller with a tenant has an STS ARN, with its account
            return self._denied(start_response, caller, "CreateEndpoint",
                                f"arn:aws:sagemaker:{region}:{caller.arn.split(':')[4]}:endpoint/{name}")
        status, headers, body = self._moto(environ, "DescribeEndpoint", {"EndpointName": name})
        if status.startswith("200"):
            arn = json.loads(body)["EndpointArn"]
            return _error(start_response, "ValidationException", f'Cannot create already existing endpoint "{arn}".')
        status, headers, body = answer_of(self.app, environ)
        if not status.startswith("200"):
            return self._pass(start_response, (status, headers, body))
        record = _Endpoint(arn=json.loads(body)["EndpointArn"], name=name, region=region, tenant=tenant, status="Creating",
                           config=config, modified=time.time())
        with self._lock:
            self._endpoints[record.arn] = record
        self._start_work(record, config, update=False)
        return self._pass(start_response, (status, headers, body))

    def _update(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        name, config = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        known = self._known(environ, start_response, "UpdateEndpoint", name)
        if isinstance(known, list):
            return known
        found = known[0]
        status, headers, body = self._moto(environ, "DescribeEndpointConfig", {"EndpointConfigName": config})
        if not status.startswith("200"):
            return self._pass(start_response, (status, headers, body))
        with self._lock:
            if found.status in BUSY:
                return _error(start_response, "ValidationException", f'Cannot update in-progress endpoint "{found.arn}".')
            if found.status == "Failed":
                return _error(start_response, "ValidationException", f'Cannot update failed endpoint "{found.arn}".')
            found.status, found.failure, found.modified = "Updating", None, time.time()
        self._start_work(found, config, update=True)
        return _send(start_response, "200 OK", {"EndpointArn": found.arn})

    def _describe(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        known = self._known(environ, start_response, "DescribeEndpoint", request.get("EndpointName", ""))
        if isinstance(known, list):
            return known
        found, described = known
        with self._lock:
            described.update(EndpointStatus=found.status, EndpointConfigName=found.config, LastModifiedTime=found.modified)
            described.pop("FailureReason", None)
            if found.failure:
                described["FailureReason"] = found.failure
        return _send(start_response, "200 OK", described)

    def _delete(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        known = self._known(environ, start_response, "DeleteEndpoint", request.get("EndpointName", ""))
        if isinstance(known, list):
            return known
        found = known[0]
        answer = answer_of(self.app, environ)
        if answer[0].startswith("200"):
            with self._lock:
                if self._endpoints.get(found.arn) is found:
                    del self._endpoints[found.arn]
            with self._work_lock(found.name):  # after a start under way: what it made live is stopped too
                self.servers.retire(found.name)
            LOG.info("endpoint %s deleted; its server is stopped", found.name)
        return self._pass(start_response, answer)

    def _known(self, environ: dict[str, Any], start_response: StartResponse, action: str,
               name: str) -> tuple[_Endpoint, dict[str, Any]] | list[bytes]:
        """The endpoint (this stand-in's record and moto's description), or the answer to give: moto's error, or a
        refusal of the caller."""
        answer = self._moto(environ, "DescribeEndpoint", {"EndpointName": name})
        if not answer[0].startswith("200"):
            return self._pass(start_response, answer)
        described = json.loads(answer[2])
        found = self._record(described, _region(environ))
        caller = self._caller(environ)
        if caller.tenant is not None and caller.tenant != found.tenant:
            return self._denied(start_response, caller, action, found.arn)
        return found, described

    def _record(self, described: dict[str, Any], region: str) -> _Endpoint:
        """The stand-in's record of an endpoint moto knows; made from moto's (and its tags) when there is none."""
        arn = described["EndpointArn"]
        with self._lock:
            found = self._endpoints.get(arn)
        if found is not None:
            return found
        try:
            tags = self._client("sagemaker", region).list_tags(ResourceArn=arn).get("Tags", [])
        except ClientError as exc:  # e.g. an endpoint of another account than the server's own credentials
            LOG.warning("cannot read the tags of %s: %s", arn, errors.describe(exc))
            tags = []
        made = _Endpoint(arn=arn, name=described["EndpointName"], region=region, tenant=_tenant_of(tags),
                         status=described.get("EndpointStatus", "InService"), config=described.get("EndpointConfigName", ""),
                         modified=time.time())
        with self._lock:
            return self._endpoints.setdefault(arn, made)

    @staticmethod
    def _denied(start_response: StartResponse, caller: _Caller, action: str, resource: str) -> list[bytes]:
        return _error(start_response, "AccessDeniedException",
                      f"User: {caller.arn} is not authorized to perform: sagemaker:{action} on resource: {resource} "
                      f"because no identity-based policy allows the sagemaker:{action} action")

    # -- the runtime --------------------------------------------------------------------------------
    def _invoke(self, environ: dict[str, Any], start_response: StartResponse, name: str) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status, _, answer = self._moto(environ, "DescribeEndpoint", {"EndpointName": name})
        if not status.startswith("200"):
            account = _ARN_ACCOUNT.search(answer.decode(errors="replace"))
            where = f" of account {account.group(1)}" if account else ""
            return _error(start_response, "ValidationError", f"Endpoint {name}{where} not found.")
        found = self._record(json.loads(answer), _region(environ))
        caller = self._caller(environ)
        if caller.tenant is not None and caller.tenant != found.tenant:
            return self._denied(start_response, caller, "InvokeEndpoint", found.arn)
        with self._lock:
            serving, config = found.status not in ("Creating", "Failed"), found.config
        if not serving:
            return _error(start_response, "ValidationError", f"Endpoint {name} of account {found.account} not found.")
        headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/octet-stream"}
        if environ.get("HTTP_ACCEPT"):
            headers["Accept"] = environ["HTTP_ACCEPT"]
        server = None
        try:
            server = self._serving(found, config)
            try:
                reply = self.servers.forward(server, name, found.tenant, body, headers)
            except OSError:
                if pid_alive(server.pid):
                    raise
                server = self._serving(found, config)  # it stopped between the look and the call: replaced once
                reply = self.servers.forward(server, name, found.tenant, body, headers)
        except _Failed as failed:
            return self._model_error(start_response, found, None, Reply(503, failed.reason.encode(), "text/plain"))
        except OSError as exc:  # no answer in time, or none at all
            return self._model_error(start_response, found, server, Reply(504, f"no answer from the model: {exc}".encode(), "text/plain"))
        if reply.status == 403:  # the server refused another endpoint's or tenant's request
            return _error(start_response, "AccessDeniedException", reply.body.decode(errors="replace"))
        if reply.status >= 400:
            return self._model_error(start_response, found, server, reply)
        return _send(start_response, "200 OK", reply.body, [("x-Amzn-Invoked-Production-Variant", VARIANT)],
                     content_type=reply.content_type or "application/octet-stream")

    def _serving(self, found: _Endpoint, config: str) -> LocalServer:
        """The endpoint's live server, started again from its config when it is not running."""
        live = self.servers.live(found.name)
        if live is not None and pid_alive(live.pid):
            return live
        with self._work_lock(found.name):
            live = self.servers.live(found.name)
            if live is not None and pid_alive(live.pid):
                return live
            LOG.warning("the server of endpoint %s is not running: starting %s again", found.name, config)
            server = self._start(found, config)
            self.servers.switch(server)
            return server

    def _model_error(self, start_response: StartResponse, found: _Endpoint, server: LocalServer | None,
                     reply: Reply) -> list[bytes]:
        """SageMaker's ModelError for a model's non-2xx answer; the server's log is put into CloudWatch Logs."""
        text = reply.body.decode("utf-8", errors="replace").strip()
        group = f"/aws/sagemaker/Endpoints/{found.name}"
        if server is not None:
            self._publish_log(found, server, group)
        where = f"{Path(server.folder) / 'server.log'}" if server is not None else f"the log group {group}"
        kind = "client" if reply.status < 500 else "server"
        message = f'Received {kind} error ({reply.status}) from primary with message "{text}". See {where} for more information.'
        return _error(start_response, "ModelError", message, "424 Failed Dependency", OriginalStatusCode=reply.status,
                      OriginalMessage=text, LogStreamArn=f"arn:aws:logs:{found.region}:{found.account}:log-group:{group}")

    def _publish_log(self, found: _Endpoint, server: LocalServer, group: str) -> None:
        """Put the server log's new lines into the endpoint's log group, stream `AllTraffic/<server folder>`."""
        log_file = Path(server.folder) / "server.log"
        try:
            with self._lock:
                offset = self._published.get(str(log_file), 0)
            with log_file.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()][-1000:]
            if not lines:
                return
            logs, stream = self._client("logs", found.region), f"{VARIANT}/{Path(server.folder).name}"
            for create, kwargs in ((logs.create_log_group, {"logGroupName": group}),
                                   (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
                try:
                    create(**kwargs)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
            stamp = int(time.time() * 1000)
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": stamp, "message": line} for line in lines])
            with self._lock:
                self._published[str(log_file)] = offset + len(data)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the log stays on disk; the answer goes out
            LOG.warning("cannot put the log of %s into CloudWatch Logs: %s", found.name, exc)

    # -- starting, checking and switching servers ----------------------------------------------------
    def _start_work(self, found: _Endpoint, config: str, *, update: bool) -> None:
        threading.Thread(target=self._roll_out, args=(found, config, update), name=f"endpoint-{found.name}",
                         daemon=True).start()

    def _roll_out(self, found: _Endpoint, config: str, update: bool) -> None:
        """Start a server for `config`, check it and switch the traffic to it; a failed one leaves blue serving."""
        with self._work_lock(found.name):
            try:
                server = self._start(found, config)
            except _Failed as failed:
                LOG.warning("endpoint %s: %s", found.name, failed.reason)
                self._finish(found, config, failed.reason, update)
                return
            except Exception as exc:  # pylint: disable=broad-exception-caught  # the endpoint must not stay Creating
                LOG.exception("endpoint %s: the start of %s failed", found.name, config)
                self._finish(found, config, f"the local AWS failed to start {config}: {type(exc).__name__}: {exc}", update)
                return
            with self._lock:
                current = self._endpoints.get(found.arn) is found
            if not current:  # deleted while it started
                self.servers.stop(server)
                return
            blue = self.servers.switch(server)
            LOG.info("endpoint %s serves %s (pid %s)%s", found.name, config, server.pid,
                     f"; {blue.version} stopped" if blue else "")
            self._finish(found, config, None, update)

    def _finish(self, found: _Endpoint, config: str, failure: str | None, update: bool) -> None:
        with self._lock:
            found.modified = time.time()
            if failure is None:
                found.status, found.config, found.failure = "InService", config, None
            elif update:  # blue keeps serving: SageMaker's rollback
                found.status = "InService"
                found.failure = f"{failure} (rolled back to {found.config})"
            else:
                found.status, found.failure = "Failed", failure

    def _start(self, found: _Endpoint, config: str) -> LocalServer:
        """A started, healthy server for `config` of the endpoint (not live yet); _Failed with the reason."""
        sm = self._client("sagemaker", found.region)
        try:
            variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
            model = sm.describe_model(ModelName=variants[0]["ModelName"])
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            package = self._package(sm, model, container)
        except ClientError as exc:
            raise _Failed(f"cannot read the model of endpoint config {config}: {errors.describe(exc)}") from None
        s3 = self._as_role(found.region, model.get("ExecutionRoleArn"))
        try:
            prepared = prepare_version(s3, package, self.servers.new_folder(found.name, config))
            server = self.servers.start(prepared, endpoint=found.name, tenant=found.tenant, model=model["ModelName"],
                                        version=config, package_arn=package.get("ModelPackageArn", ""))
        except MlopsError as exc:
            raise _Failed(exc.one_line()) from None
        health = self.servers.health(server)
        if not health.ok:
            self.servers.stop(server)
            raise _Failed(f"the health check of {config} failed: {health.detail}")
        LOG.info("endpoint %s: %s", found.name, health.detail)
        return server

    @staticmethod
    def _package(sm: Any, model: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
        """What `prepare_version` reads: the model package's description, or the model's own container."""
        if not container.get("ModelPackageName"):
            return {"ModelPackageArn": model.get("ModelArn", ""), "InferenceSpecification": {"Containers": [container]}}
        package = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
        if container.get("Environment"):  # the model's container may add to the package's environment
            spec = package.get("InferenceSpecification") or {}
            first = dict((spec.get("Containers") or [{}])[0])
            first["Environment"] = {**(first.get("Environment") or {}), **container["Environment"]}
            package["InferenceSpecification"] = {**spec, "Containers": [first, *(spec.get("Containers") or [])[1:]]}
        return package

    def _as_role(self, region: str, role_arn: str | None) -> Any:
        """An S3 client as the model's execution role, as SageMaker assumes it to load the model."""
        if not role_arn:
            return self._client("s3", region)
        sts = self._client("sts", region)
        try:
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="SageMaker")["Credentials"]
        except ClientError as exc:
            raise _Failed(f"cannot assume the model's execution role {role_arn}: {errors.describe(exc)}") from None
        return self._session().client("s3", endpoint_url=self.endpoint_url(), region_name=region,
                                      aws_access_key_id=credentials["AccessKeyId"],
                                      aws_secret_access_key=credentials["SecretAccessKey"],
                                      aws_session_token=credentials["SessionToken"])

    def _work_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._work.setdefault(name, threading.Lock())

    def _reset(self) -> None:
        """moto's state is being reset: every endpoint goes, and with it every server."""
        with self._lock:
            self._endpoints.clear()
            self._published.clear()
        stopped = self.servers.stop_all()
        if stopped:
            LOG.info("reset: stopped the servers of %s", ", ".join(stopped))

    # -- AWS through this server ----------------------------------------------------------------------
    _session_lock = threading.Lock()

    def _session(self) -> Any:
        import boto3  # pylint: disable=import-outside-toplevel  # on the first endpoint call, not at the server's start

        with self._session_lock:  # a boto3 session is not safe to build clients from in several threads at once
            return boto3.session.Session()

    def _client(self, service: str, region: str) -> Any:
        """A client of this server with the server's own credentials (clients are thread-safe, so kept)."""
        with self._lock:
            client = self._clients.get((service, region))
        if client is None:
            client = self._session().client(service, endpoint_url=self.endpoint_url(), region_name=region,
                                            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                                            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
            with self._lock:
                client = self._clients.setdefault((service, region), client)
        return client

    def _caller(self, environ: dict[str, Any]) -> _Caller:
        """The principal that signed the request and its tenant (its `mlops:tenant` tag), asked once per access key."""
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not found:
            return _Caller("anonymous", None)
        key, region = found.group(1), found.group(2) or "us-east-1"
        with self._lock:
            known = self._callers.get(key)
        if known is not None:
            return known
        try:
            sts = self._session().client("sts", endpoint_url=self.endpoint_url(), region_name=region, aws_access_key_id=key,
                                         aws_secret_access_key="unused",  # the local AWS does not check signatures
                                         aws_session_token=environ.get("HTTP_X_AMZ_SECURITY_TOKEN") or None)
            arn = str(sts.get_caller_identity()["Arn"])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # an unknown caller has no tenant
            LOG.warning("cannot tell who signed with %s: %s", key, exc)
            return _Caller(f"access key {key}", None)
        kind, _, rest = arn.split(":", 5)[-1].partition("/")
        iam = self._client("iam", region)
        try:
            if kind == "assumed-role":
                tags = iam.list_role_tags(RoleName=rest.split("/")[0]).get("Tags", [])
            elif kind == "user":
                tags = iam.list_user_tags(UserName=rest.rsplit("/", 1)[-1]).get("Tags", [])
            else:
                tags = []
        except ClientError as exc:
            if not errors.is_not_found(exc) and errors.code(exc) != "NoSuchEntity":
                LOG.warning("cannot read the tags of %s: %s", arn, errors.describe(exc))
            tags = []
        caller = _Caller(arn, _tenant_of(tags) or None)
        with self._lock:
            self._callers[key] = caller
        return caller


def _region(environ: dict[str, Any]) -> str:
    """The region of the request's credential scope."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (found.group(2) if found else "") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
