"""The tenant isolation matrix's figures: planned policies evaluated with AWS's evaluation logic.

Prints figures and asserts nothing (tests/iam asserts). Writes the matrix's registry (six tenants on all tiers,
with the prefix pair acme / acme-eu) into a temporary folder, plans the Terraform root against a moto server
of its own with every policy known (tests/iam/policy_matrix.py says how), evaluates every planned role against
every tenant's resources with @cloud-copilot/iam-simulate (installed into .ci/node from its lock), and widens
acme's model package group ARN to `<project>-acme*` in a copy of its roles' policies (the mutation control).

    python bench/iam_matrix.py
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "iam"))

import policy_matrix as pm  # noqa: E402  # pylint: disable=wrong-import-position  # after the path


def _details(planned: pm.Planned, matrix: pm.Matrix) -> None:
    """The shared roles' reach and any cross-tenant allow, by role kind and action."""
    print("\nshared roles (by design): action -> tenants whose resources it reaches")
    for role, actions in sorted(matrix.shared_allows().items()):
        print(f"  {role}: " + ", ".join(f"{action} ({len(tenants)})" for action, tenants in sorted(actions.items())))
    if matrix.cross_allows:
        print("\ncross-tenant allows by role kind and action:")
        counts: dict[str, int] = {}
        for e in matrix.cross_allows:
            label = f"{planned.role_kind(planned.roles[e.principal])} {e.request.action}"
            counts[label] = counts.get(label, 0) + 1
        for label, count in sorted(counts.items()):
            print(f"  {label}: {count}")


def main() -> None:
    """Plan, evaluate, mutate; print the figures."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[key] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from mlops.local.server import ThreadedServer
    from mlops.terraform import find_aws_provider

    provider = find_aws_provider()
    if provider is not None:
        os.environ.setdefault("MLOPS_TF_PLUGIN_DIR", str(provider))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    figures: dict[str, object] = {"simulator": f"@cloud-copilot/iam-simulate {pm.install_simulator()}"}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work, ThreadedServer() as endpoint:
        plan, phases = pm.plan_with_known_policies(pm.write_registry(Path(work)), endpoint)
    figures["plan with every policy known (s)"] = " + ".join(f"{value:.1f} ({phase})" for phase, value in phases.items())
    planned = pm.read_plan(plan)
    started_matrix = time.monotonic()
    matrix = pm.evaluate_matrix(planned)
    figures.update(matrix.figures())
    figures["matrix wall time, Node included (s)"] = round(time.monotonic() - started_matrix, 1)

    owner, neighbour = "acme", "acme-eu"
    group = planned.tenant_names(owner)["model_package_groups"]["churn"]
    caught = 0
    for role in planned.tenant_roles(owner):
        if group in str(role.identity):
            mutated = pm.evaluate_matrix(planned, [pm.widened(role, group, f"{planned.project}-{owner}*")])
            caught += sum(1 for e in mutated.cross_allows if e.target == neighbour)
    figures[f"mutation ({group} -> {planned.project}-{owner}*): cross-tenant allows found on {neighbour}"] = caught
    figures["mutation caught"] = caught > 0
    figures["seconds in all"] = round(time.monotonic() - started, 1)

    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    _details(planned, matrix)

if __name__ == "__main__":
    main()
