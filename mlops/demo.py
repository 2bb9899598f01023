"""`make demo` and `mlops demo`: the whole story on the embedded local AWS, told through the same `mlops` commands CI runs.

Every step is a real `mlops …` call in a subprocess, printed before it runs, exactly as a GitLab job would
run it; the demo only glues them together and keeps the values one step hands to the next (versions,
execution ids). It works in `$MLOPS_STATE_DIR/demo/` and stops the local AWS it started at the end, also
when a step fails; a local AWS that ran before the demo is reused and left running. A failing step ends the
demo with that step's own one-line error and a non-zero exit.

Stages: registry → local AWS up → lint, version, image build/publish (twice: a first commit and a `feat:`
commit) → tenant data uploaded: globex's upload starts a build through the trigger, acme's is only recorded
(the demo's copy of the registry sets acme to `retrain_on_upload: scheduled`) → train per tenant from the CI
path → deploy, predictions → a SageMaker-native model repository trained, deployed and served → the
retraining check 15 days later, after acme uploaded more data: globex stale, acme with new data, both builds
started → a worse challenger refused by the gate → ledger, cost and summary →
local AWS down (when the demo started it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from mlops.config.contract import load_contract
from mlops.settings import Settings
from mlops.statuses import TERMINAL

EXAMPLE = "churn"
#: A model repository written only for SageMaker's own container contract, trained and served unchanged.
NATIVE = "home-value"
#: The demo's tenant whose uploads wait for the daily retraining check (set in the demo's copy of the registry).
SCHEDULED_TENANT = "acme"


@contextlib.contextmanager
def phase(phases: list[tuple[str, float]], name: str) -> Iterator[None]:
    """Time one phase of the story: its seconds are printed as it ends and kept for the summary."""
    started = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - started
        phases.append((name, seconds))
        print(f"⏱ {name}: {seconds:.1f} s", flush=True)


class StepFailed(Exception):
    """A demo step exited non-zero; its own output already told why."""


class Demo:
    """Runs the demo steps and remembers what the summary needs."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.work = settings.state_dir / "demo"
        self.env = dict(os.environ)
        self.env.setdefault("MLOPS_ROOT", str(settings.root))
        self.env.setdefault("MLOPS_STATE_DIR", str(settings.state_dir))
        self.env["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
        self.summary: dict[str, Any] = {"versions": [], "trainings": []}
        self.started = time.monotonic()
        self.s3: Any = None
        self.phases: list[tuple[str, float]] = []
        #: whether a local AWS ran before the demo started (then the demo reuses it and never stops it)
        self.found_running: bool | None = None

    def registry_copy(self) -> None:
        """The demo's registry: the repository's, with acme's uploads left to the daily check."""
        tenants = self.work / "tenants"
        shutil.rmtree(tenants, ignore_errors=True)
        shutil.copytree(self.settings.tenants_dir, tenants)
        scheduled = tenants / f"{SCHEDULED_TENANT}.yaml"
        if scheduled.exists():
            scheduled.write_text(scheduled.read_text(encoding="utf-8").rstrip("\n") + "\nretrain_on_upload: scheduled\n",
                                 encoding="utf-8")
        self.env["MLOPS_TENANTS_DIR"] = str(tenants)

    # -- plumbing -----------------------------------------------------------------------------------
    def say(self, title: str) -> None:
        """A stage header."""
        print(f"\n━━ {title}", flush=True)

    def run(self, *args: str, want_json: bool = False, cwd: Path | None = None, check: bool = True) -> Any:
        """Run one `mlops` command as CI would, echoed before it runs; return its parsed JSON when asked.

        With `want_json` what is shown is what `--json` prints, the JSON (its first lines when long), never the
        command's progress lines; those are shown only when the command fails, so its error is in view."""
        argv = ["mlops", *args] + (["--json"] if want_json else [])
        print(f"$ {shlex.join(argv)}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "mlops", *argv[1:]],
            cwd=cwd or self.settings.root, env=self.env, check=False, text=True,
            stdout=subprocess.PIPE if want_json else None, stderr=subprocess.PIPE if want_json else None,
        )
        data = None
        if want_json:
            try:
                data = json.loads(proc.stdout) if proc.stdout.strip() else None
            except json.JSONDecodeError:
                data = None
            if proc.returncode != 0 and proc.stderr:
                print(proc.stderr.rstrip("\n"), file=sys.stderr, flush=True)
            _show_json(data)
        if proc.returncode != 0 and check:
            raise StepFailed(f"`{shlex.join(argv)}` exited with {proc.returncode}")
        return data if want_json else proc.returncode

    def python(self, *args: str) -> None:
        """Run a helper script of the examples with this interpreter."""
        print(f"$ python {shlex.join(args)}", flush=True)
        subprocess.run([sys.executable, *args], cwd=self.settings.root, env=self.env, check=True)

    def load_local_env(self) -> None:
        """Take the endpoint and fake credentials from the env file `mlops local up` wrote."""
        from mlops.local.runtime_process import read_env_file  # pylint: disable=import-outside-toplevel

        self.env.update(read_env_file(self.settings.state_dir / "local" / "env"))

    def git(self, repo: Path, *args: str) -> str:
        """Run git in the demo's copy of the model repository."""
        env = {**self.env, "GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
               "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, text=True, capture_output=True).stdout

    # -- stages -------------------------------------------------------------------------------------
    def registry(self) -> None:
        """Show the tenants and tiers the demo runs for."""
        self.say("The tenant registry")
        self.run("tenants", "validate")
        self.run("tenants", "list")
        self.summary["tenants"] = self.run("tenants", "list", want_json=True)

    def local_up(self) -> None:
        """Start the local AWS, provisioned by the Terraform root."""
        self.say("The local AWS: a moto server provisioned by the same Terraform modules as a real account")
        before = self.run("local", "status", want_json=True, check=False) or {}
        self.found_running = bool(before.get("running"))
        state = self.run("local", "up", want_json=True)
        self.summary["local_up_seconds"] = (state or {}).get("timings", {}).get("usable")
        self.load_local_env()
        self.run("local", "status")

    def upload_data(self) -> None:
        """Generate each tenant's dataset and upload it where the tenant's uploads land."""
        self.say("Tenant data: a different dataset per tenant; an upload starts a build by itself "
                 "(S3 → EventBridge → SQS → trigger → tier admission → pipeline), or, for a tenant with "
                 "retrain_on_upload: scheduled (acme here), is recorded for the daily retraining check")
        data_dir = self.work / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        others = sorted({m for t in self.summary["tenants"] for m in t["models"]} - {EXAMPLE, NATIVE})
        if others:
            print(f"  the demo builds, trains and deploys {EXAMPLE} and {NATIVE}; the registry's other models "
                  f"({', '.join(others)}) get no data or build here", flush=True)
        uploads = []
        for tenant in self._churn_tenants():
            self.python("examples/datagen.py", "--model", EXAMPLE, "--tenant", tenant, "--out", str(data_dir / tenant / EXAMPLE))
            for csv in sorted((data_dir / tenant / EXAMPLE).glob("*.csv")):
                uploads.append(self.put_data(tenant, EXAMPLE, csv))
        self.summary["uploads"] = uploads
        self.wait_for_builds(sum(1 for u in uploads if u["tenant"] != SCHEDULED_TENANT))

    def put_data(self, tenant: str, model: str, csv: Path, key_name: str | None = None) -> dict[str, Any]:
        """Upload one CSV to the tenant's `data/<model>/` prefix, as the tenant would."""
        from mlops.config.tenants import load_from_settings  # pylint: disable=import-outside-toplevel

        if self.s3 is None:
            import boto3  # pylint: disable=import-outside-toplevel  # only after the local env is loaded

            session = boto3.session.Session(
                aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                region_name=self.env.get("AWS_DEFAULT_REGION", "us-east-1"))
            self.s3 = session.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"])
        naming = load_from_settings(self.settings).names()
        bucket, key = naming.tenant_bucket(tenant), f"{naming.data_prefix(model)}{key_name or csv.name}"
        self.s3.upload_file(str(csv), bucket, key)
        rows = sum(1 for _ in csv.open(encoding="utf-8")) - 1
        print(f"  uploaded {rows:>5} rows for {tenant}/{model} to s3://{bucket}/{key}")
        return {"tenant": tenant, "model": model, "uri": f"s3://{bucket}/{key}", "rows": rows}

    def wait_for_builds(self, count: int, timeout: float = 600.0) -> list[dict[str, Any]]:
        """Wait until `count` builds are in the ledger and none is still queued or running."""
        print(f"  waiting for {count} build(s) to pass admission and finish…", flush=True)
        deadline = time.monotonic() + timeout
        items: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            items = self.run_quiet("executions", "list", "--json") or []
            items = [i for i in items if i.get("status") != "REJECTED"]  # refused uploads are no builds
            done = [i for i in items if i.get("status") in TERMINAL]
            if len(items) >= count and len(done) == len(items):
                break
            time.sleep(2)
        else:
            raise StepFailed(f"builds did not finish within {timeout:.0f} s (see `mlops executions list`)")
        self.run("executions", "list")
        return items

    def run_quiet(self, *args: str) -> Any:
        """A `mlops … --json` call whose output only the demo reads (polling)."""
        proc = subprocess.run([sys.executable, "-m", "mlops", *args], cwd=self.settings.root, env=self.env,
                              check=False, text=True, capture_output=True)
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            return None
        # A verdict with problems (exit 1) still answers its JSON; a failed command answers {"error": ...}.
        return None if isinstance(data, dict) and "error" in data else data

    def model_repo(self, model: str = EXAMPLE) -> Path:
        """A git repository holding a copy of an example model, as a model team would have it."""
        repo = self.work / f"{model}-repo"
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(self.settings.root / "examples" / model, repo,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        self.git(repo, "init", "--quiet", "--initial-branch=main")
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "--quiet", "-m", f"feat: first {model} model")
        return repo

    def sagemaker_native(self) -> None:
        """The SageMaker-native example: its scripts know only SageMaker's container contract (real /opt/ml paths,
        SM_CHANNEL_TRAIN, model-quality metrics, strict arguments); the platform trains, gates, deploys and serves
        it without a changed line."""
        tenants = [t["id"] for t in self.summary["tenants"] if NATIVE in t["models"]]
        if not tenants:
            print(f"  no tenant trains {NATIVE} in this registry: skipped", flush=True)
            return
        tenant = tenants[0]
        self.say(f"A SageMaker-native model repository ({NATIVE}): written only for SageMaker's container contract, "
                 f"trained, gated, deployed and served for {tenant} unchanged")
        repo = self.model_repo(NATIVE)
        self.run("contract", "validate", str(repo))
        self._publish(repo, NATIVE, f"first {NATIVE} commit")
        out = self.work / "data" / tenant / NATIVE
        self.python("examples/datagen.py", "--model", NATIVE, "--tenant", tenant, "--out", str(out))
        for csv in sorted(out.glob("*.csv")):
            self.summary["uploads"].append(self.put_data(tenant, NATIVE, csv))
        result = self.run("train", "--tenant", tenant, "--repo", str(repo), "--wait", want_json=True)
        self.summary["trainings"].append({"tenant": tenant, "tier": "", "instance_type": "", **(result or {})})
        deployed = self.run("deploy", "--tenant", tenant, "--model", NATIVE, "--environment", "staging", "--repo", str(repo),
                            want_json=True)
        self.summary["deployments"].append({"tenant": tenant, **(deployed or {})})
        body = self.work / f"rows-{tenant}-{NATIVE}.csv"
        body.write_text("8.3,6.2,41,12.5,1\n2.1,4.4,18,60.0,0\n", encoding="utf-8")
        self.run("invoke", "--tenant", tenant, "--model", NATIVE, "--environment", "staging", "--body", str(body),
                 "--content-type", "text/csv")

    def build(self, repo: Path, label: str) -> str:
        """Lint, version, build and publish the model image for the repository's current commit."""
        self.say(f"Build stage for the {label}: lint, next version, image build, immutable publish")
        self.run("lint", str(repo), "--codequality", str(self.work / "codequality.json"))
        return self._publish(repo, EXAMPLE, label)

    def _publish(self, repo: Path, model: str, label: str) -> str:
        """The next version of the repository's current commit, its image built and published to ECR; returns the version."""
        version = self.run("version", "next", "--model", model, "--repo", str(repo), "--branch", "main",
                           "--dotenv", str(self.work / "version.env"), want_json=True)["version"]
        archive = self.work / f"{model}-{version}.oci.tar"
        self.run("image", "build", "--repo", str(repo), "--kind", "training", "--builder", "source", "--out", str(archive))
        published = self.run("image", "publish", "--model", model, "--version", version, "--archive", str(archive),
                             want_json=True)
        self.summary["versions"].append({"model": model, "commit": label, "version": published["version"],
                                         "digest": published.get("digest", "")})
        print(f"  published {model} {published['version']} ({published.get('digest', '')[:19]}…)")
        return published["version"]

    def train(self, repo: Path, version: str) -> None:
        """Train the model for every tenant that subscribes to it, each on its own data and tier."""
        self.say("Train stage: one pipeline definition, one execution per tenant with that tenant's parameters")
        for tenant in self.summary["tenants"]:
            if EXAMPLE not in tenant["models"]:
                continue
            result = self.run("train", "--tenant", tenant["id"], "--repo", str(repo), "--version", version, "--wait",
                              want_json=True)
            self.summary["trainings"].append({"tenant": tenant["id"], "tier": tenant["tier"],
                                              "instance_type": tenant["instance_type"], **(result or {})})

    def deploy(self, repo: Path) -> None:
        """Deploy each tenant's model through the gate and ask it for predictions."""
        self.say("Deploy stage (the manual click): gate, approval, blue/green endpoint, real predictions")
        self.summary["deployments"] = []
        for tenant in self._churn_tenants():
            result = self.run("deploy", "--tenant", tenant, "--model", EXAMPLE, "--environment", "staging", "--repo", str(repo),
                              want_json=True)
            self.summary["deployments"].append({"tenant": tenant, **(result or {})})
            body = self.work / f"rows-{tenant}.json"
            body.write_text(json.dumps({"instances": self._sample_rows(tenant)}), encoding="utf-8")
            self.run("invoke", "--tenant", tenant, "--model", EXAMPLE, "--environment", "staging", "--body", str(body))

    def worse_challenger(self, repo: Path) -> None:
        """A commit that makes the model worse: it trains and registers, and the gate refuses it."""
        self.say("A worse challenger: a commit shrinks the model; it passes the threshold but not the champion")
        contract = repo / "mlops.yaml"
        text = contract.read_text(encoding="utf-8")
        text = text.replace("n_estimators: 120", "n_estimators: 2").replace("max_depth: 3", "max_depth: 1")
        contract.write_text(text, encoding="utf-8")
        self.git(repo, "commit", "--quiet", "-am", "feat: a smaller, faster model")
        version = self.build(repo, "feat: smaller model")
        tenant = self._churn_tenants()[0]
        result = self.run("train", "--tenant", tenant, "--repo", str(repo), "--version", version, "--wait", want_json=True)
        self.summary["trainings"].append({"tenant": tenant, "tier": "", "instance_type": "", **(result or {})})
        gate = ("gate", "--tenant", tenant, "--model", EXAMPLE, "--repo", str(repo), "--version", version)
        self.run(*gate, check=False)
        decision = self.run(*gate, want_json=True, check=False) or {}
        if decision.get("deploy"):
            raise StepFailed(f"the gate should have refused the smaller model {version}, it decided {decision.get('outcome')}")
        self.summary["gate"] = decision

    def retrain_check(self, repo: Path) -> None:
        """The daily check as if run 15 days from now: globex (14-day override) is stale, and acme, whose uploads
        are scheduled, has uploaded more data since its training; both are retrained."""
        self.say("Scheduled retraining: acme uploads more data (recorded, no build: retrain_on_upload is scheduled), "
                 "then the daily check as if run 15 days from now (dry run, then --apply)")
        before = len([i for i in self.run_quiet("executions", "list", "--json") or [] if i.get("status") != "REJECTED"])
        csv = next((self.work / "data" / SCHEDULED_TENANT / EXAMPLE).glob("*.csv"))
        self.summary["uploads"].append(self.put_data(SCHEDULED_TENANT, EXAMPLE, csv, f"next-{csv.name}"))
        later = (datetime.now(timezone.utc) + timedelta(days=15)).isoformat(timespec="seconds")
        check = ("retrain-check", "--now", later, "--contract", str(repo))
        self._wait_for_upload_recorded(check)
        report = self.work / "retrain-report.md"
        self.run(*check)
        decisions = self.run(*check, "--report", str(report), "--apply", want_json=True) or {}
        for decision in decisions.get("decisions", []):
            if decision["action"] == "retrain":
                codes = ", ".join(r["code"] for r in decision["reasons"])
                print(f"  decided: retrain {decision['tenant']}/{decision['model']} ({codes})")
        started = decisions.get("applied", [])
        for item in started:
            print(f"  retraining requested: {item['tenant']}/{item['model']} -> {item['request']}")
        self.summary["retrain_report"] = str(report)
        self.summary["retrain"] = [d for d in decisions.get("decisions", []) if d["action"] == "retrain"]
        if started:
            self.wait_for_builds(before + len(started))

    def _wait_for_upload_recorded(self, check: tuple[str, ...], timeout: float = 120.0) -> None:
        """Until the trigger has recorded acme's upload (the local Lambda runtime polls the uploads queue)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.run_quiet(*check, "--tenant", SCHEDULED_TENANT, "--model", EXAMPLE, "--json") or {}
            if any(r["code"] == "new-data" for d in data.get("decisions", []) for r in d["reasons"]):
                return
            time.sleep(2)
        raise StepFailed(f"the trigger did not record {SCHEDULED_TENANT}'s upload within {timeout:.0f} s")

    def _churn_tenants(self) -> list[str]:
        return [t["id"] for t in self.summary["tenants"] if EXAMPLE in t["models"]]

    def _sample_rows(self, tenant: str, count: int = 3) -> list[dict[str, str]]:
        import csv  # pylint: disable=import-outside-toplevel

        path = next((self.work / "data" / tenant / EXAMPLE).glob("*.csv"))
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [row for _, row in zip(range(count), csv.DictReader(handle))]
        return [{k: v for k, v in row.items() if k not in ("customer_id", "churned")} for row in rows]

    def print_summary(self) -> None:
        """The readable end of the demo."""
        from mlops.cli.output import table  # pylint: disable=import-outside-toplevel

        self.say("Summary")
        table("Tenants", ["tenant", "tier", "instance type", "max builds", "models"],
              [[t["id"], t["tier"], t["instance_type"], t["max_concurrent_builds"], ", ".join(t["models"])]
               for t in self.summary["tenants"]])
        if self.summary.get("uploads"):
            table("Tenant data", ["tenant", "model", "rows", "uploaded to"],
                  [[u["tenant"], u["model"], u["rows"], u["uri"]] for u in self.summary["uploads"]])
        if self.summary["versions"]:
            table("Published images", ["model", "commit", "version", "digest"],
                  [[v["model"], v["commit"], v["version"], v["digest"][:19]] for v in self.summary["versions"]])
        if self.summary["trainings"]:
            metric = load_contract(self.settings.root / "examples" / EXAMPLE).metric.name
            table("Trainings", ["tenant", "tier", "instance type", "status", metric, "model package (group/version)"],
                  [[t["tenant"], t["tier"], t["instance_type"], t.get("status", ""), _fmt((t.get("metrics") or {}).get(metric)),
                    (t.get("model_package_arn") or "").rpartition("model-package/")[2]] for t in self.summary["trainings"]])
        if self.summary.get("deployments"):
            table("Endpoints", ["tenant", "endpoint", "outcome", "serving"],
                  [[d["tenant"], d.get("endpoint", ""), d.get("outcome", ""), d.get("serving_version", "")]
                   for d in self.summary["deployments"]])
        if self.summary.get("gate"):
            gate = self.summary["gate"]
            print(f"\ngate for {gate['tenant']} {gate['challenger']['version']}: {gate['outcome']}")
            for reason in gate.get("reasons", []):
                print(f"  - {reason}")
        print()
        self.run("executions", "list")
        self.run("cost", "report")
        if self.summary.get("retrain"):
            table("Retraining decisions", ["tenant", "model", "reasons"],
                  [[d["tenant"], d["model"], "; ".join(r["text"] for r in d["reasons"])] for d in self.summary["retrain"]])
        if self.summary.get("retrain_report"):
            print(f"retraining report: {self.summary['retrain_report']}")
        table("Phases", ["phase", "seconds"], [[name, f"{seconds:.1f}"] for name, seconds in self.phases])
        print(f"\ndemo finished in {time.monotonic() - self.started:.0f} s "
              f"(local AWS usable in {self.summary.get('local_up_seconds') or 0:.0f} s)")


def _fmt(value: Any) -> str:
    from mlops.cli.output import fmt_number  # pylint: disable=import-outside-toplevel  # rich only when printing

    return fmt_number(value)


#: Lines of a command's JSON the demo shows (the command prints all of it; the demo only reads it).
JSON_LINES = 24


def _show_json(data: Any) -> None:
    """What a `--json` command printed, as JSON: its first lines when it is long."""
    if data is None:
        return
    lines = json.dumps(data, indent=2, sort_keys=True, default=str).splitlines()
    for line in lines[:JSON_LINES]:
        print(f"  {line}")
    if len(lines) > JSON_LINES:
        print(f"  … {len(lines) - JSON_LINES} more line(s) of JSON")


def run_demo(settings: Settings | None = None) -> int:
    """Run every stage; stop the local AWS if the demo started it; return the exit code."""
    demo = Demo(settings or Settings.from_env())
    demo.work.mkdir(parents=True, exist_ok=True)
    try:
        with phase(demo.phases, "registry"):
            demo.registry_copy()
            demo.registry()
        with phase(demo.phases, "local AWS usable"):
            demo.local_up()
        with phase(demo.phases, "build: lint, version, image (two commits)"):
            repo = demo.model_repo()
            demo.build(repo, "first commit")
            (repo / "CHANGELOG.md").write_text("- add tenure buckets\n", encoding="utf-8")
            demo.git(repo, "add", "-A")
            demo.git(repo, "commit", "--quiet", "-m", "feat: tenure buckets")
            version = demo.build(repo, "feat: commit")
            demo.run("pipeline", "upsert", "--repo", str(repo))
        with phase(demo.phases, "local AWS ready (rest of the apply)"):
            demo.run("local", "wait")  # uploads start builds once the queues exist
        with phase(demo.phases, "uploads start builds"):
            demo.upload_data()
        with phase(demo.phases, "train per tenant"):
            demo.train(repo, version)
        with phase(demo.phases, "deploy and predict"):
            demo.deploy(repo)
        with phase(demo.phases, "SageMaker-native model"):
            demo.sagemaker_native()
        with phase(demo.phases, "retraining check"):
            demo.retrain_check(repo)
        with phase(demo.phases, "worse challenger refused"):
            demo.worse_challenger(repo)
        demo.print_summary()
        return 0
    except StepFailed as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if demo.found_running:
            demo.say("Leaving the local AWS running: it ran before the demo (stop it with `mlops local down`)")
        elif demo.found_running is not None:
            demo.say("Stopping the local AWS")
            demo.run("local", "down", check=False)


@click.command()
def demo() -> None:
    """Run the whole story on the embedded local AWS and print a summary (stops the local AWS at the end)."""
    raise SystemExit(run_demo())


if __name__ == "__main__":
    sys.exit(run_demo())
