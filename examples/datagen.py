"""Synthetic tenant data for the example models: a different dataset per tenant, deterministic.

Each tenant's *distribution* (size, base churn rate or price level, feature shifts, category mix) is derived
from a hash of the tenant id and the model, so it never changes between runs; `--seed` only draws a new
sample from that distribution, which is how a newer data drop of the same tenant is made. `--noise` replaces
that fraction of the labels by a shuffle of themselves (1.0 = no signal left), which produces a deliberately
worse dataset and so a worse challenger. `--shift` moves the numeric features by that many standard
deviations (drift). Every dataset carries a real, learnable signal.

    python examples/datagen.py --model churn --tenant acme --seed 1 --out out/data
    python examples/datagen.py --all --root . --out out/data      # every tenant x model in the registry

It writes CSV with a header and prints one line per file written. This module imports pandas and numpy
only; the registry (`--all`) is read through `mlops.config.tenants`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGETS = {"churn": "churned", "house-prices": "price", "home-value": "value"}
CONTRACTS = ("month-to-month", "one-year", "two-year")
INTERNET = ("dsl", "fiber", "none")
PAYMENTS = ("card", "bank-transfer", "electronic-check", "mailed-check")
NEIGHBORHOODS = ("riverside", "old-town", "hillcrest", "meadows", "harbor")


def tenant_seed(tenant: str, model: str) -> int:
    """A stable 64-bit seed from the tenant id and model (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.sha256(f"{tenant}/{model}".encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Profile:
    """What makes one tenant's data its own: size and distribution parameters."""

    rows: int
    base_rate: float  # churn: share of churners; house-prices: median price level
    level: float  # churn: mean monthly charge; house-prices: mean living area (sqft)
    scale: float  # churn: mean tenure in months; house-prices: age spread in years
    mix: tuple[float, ...]  # category proportions (contracts or neighbourhood premiums)


def profile(tenant: str, model: str) -> Profile:
    """The tenant's data profile for a model, derived from its id alone."""
    rng = np.random.default_rng(tenant_seed(tenant, model))
    if model == "churn":
        return Profile(rows=int(rng.integers(500, 1300)), base_rate=float(rng.uniform(0.18, 0.38)),
                       level=float(rng.uniform(50, 85)), scale=float(rng.uniform(14, 34)),
                       mix=tuple(float(p) for p in rng.dirichlet([4.0, 2.0, 2.0])))
    if model == "house-prices":
        return Profile(rows=int(rng.integers(400, 1000)), base_rate=float(rng.uniform(250_000, 450_000)),
                       level=float(rng.uniform(1300, 2300)), scale=float(rng.uniform(25, 60)),
                       mix=tuple(float(p) for p in rng.normal(0.0, 0.12, len(NEIGHBORHOODS))))
    if model == "home-value":
        return Profile(rows=int(rng.integers(500, 1100)), base_rate=float(rng.uniform(180.0, 420.0)),
                       level=float(rng.uniform(3.0, 7.0)), scale=float(rng.uniform(15, 40)),
                       mix=tuple(float(p) for p in rng.uniform(0.05, 0.25, 2)))
    raise ValueError(f"unknown model '{model}' (use one of: {', '.join(TARGETS)})")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _intercept_for(logit: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean churn probability equal `rate` (bisection; monotone)."""
    low, high = -15.0, 15.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if _sigmoid(logit + mid).mean() < rate else (low, mid)
    return (low + high) / 2


def _churn(prof: Profile, rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    tenure = np.clip(np.round(rng.exponential(prof.scale, rows) + 1 + shift * 12), 1, 72).astype(int)
    contract = rng.choice(CONTRACTS, rows, p=prof.mix)
    internet = rng.choice(INTERNET, rows, p=[0.4, 0.45, 0.15])
    payment = rng.choice(PAYMENTS, rows, p=[0.3, 0.25, 0.3, 0.15])
    fiber = (internet == "fiber").astype(float)
    monthly = np.clip(rng.normal(prof.level + 15 * fiber + shift * 15, 14, rows), 18, 130).round(2)
    total = (monthly * tenure * rng.uniform(0.95, 1.05, rows)).round(2)
    calls = rng.poisson(1.2 + 0.8 * fiber, rows)
    senior = rng.binomial(1, 0.17, rows)
    effect = {"month-to-month": 1.0, "one-year": -0.6, "two-year": -1.6}
    logit = (-0.045 * (tenure - 24) + 0.03 * (monthly - 70) + 0.5 * (calls - 1.5)
             + np.vectorize(effect.get)(contract) + 0.7 * (payment == "electronic-check") + 0.4 * senior)
    churned = rng.binomial(1, _sigmoid(logit + _intercept_for(logit, prof.base_rate)))
    frame = pd.DataFrame({
        "customer_id": [f"C{n:06d}" for n in rng.permutation(1_000_000)[:rows]],
        "tenure_months": tenure, "monthly_charges": monthly, "total_charges": total,
        "support_calls": calls, "senior": senior, "contract": contract,
        "internet_service": internet, "payment_method": payment, "churned": churned,
    })
    # Real exports have gaps: a few new customers have no total yet.
    frame.loc[rng.random(rows) < 0.01, "total_charges"] = np.nan
    return frame


def _house_prices(prof: Profile, rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    sqft = np.clip(np.round(prof.level * np.exp(rng.normal(shift * 0.3, 0.35, rows))), 400, 8000).astype(int)
    bedrooms = np.clip(np.round(sqft / 600 + rng.normal(0, 0.7, rows)), 1, 7).astype(int)
    bathrooms = np.clip(np.round((bedrooms * 0.6 + rng.normal(0, 0.5, rows)) * 2) / 2, 1, 5)
    age = np.clip(np.round(rng.exponential(prof.scale, rows)), 0, 120).astype(int)
    lot = np.round(sqft * rng.uniform(1.5, 5.0, rows)).astype(int)
    garage = rng.binomial(1, 0.65, rows)
    condition = rng.choice([1, 2, 3, 4, 5], rows, p=[0.05, 0.15, 0.45, 0.25, 0.10])
    area = rng.integers(0, len(NEIGHBORHOODS), rows)
    log_price = (np.log(prof.base_rate) + 0.85 * np.log(sqft / prof.level) + 0.04 * (bathrooms - 2)
                 - 0.004 * age + 0.06 * garage + 0.05 * (condition - 3) + 0.05 * np.log(lot / sqft)
                 + np.asarray(prof.mix)[area] + rng.normal(0, 0.07, rows))
    return pd.DataFrame({
        "house_id": [f"H{n:06d}" for n in rng.permutation(1_000_000)[:rows]],
        "sqft": sqft, "bedrooms": bedrooms, "bathrooms": bathrooms, "age_years": age, "lot_size": lot,
        "has_garage": garage, "condition": condition, "neighborhood": np.asarray(NEIGHBORHOODS)[area],
        "price": np.round(np.exp(log_price), -2).astype(int),
    })


def _home_value(prof: Profile, rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Numeric district data (value in thousands, the label first) for a model written against SageMaker alone."""
    income = np.round(np.clip(rng.lognormal(np.log(prof.level), 0.35, rows) + shift, 0.5, 15.0), 3)
    rooms = np.round(np.clip(rng.normal(5.4, 1.1, rows), 2.0, 10.0), 2)
    age = np.clip(np.round(rng.exponential(prof.scale, rows)), 1, 52).astype(int)
    distance = np.round(rng.gamma(2.0, 12.0, rows) * (1 + shift * 0.2), 2)
    coastal = rng.binomial(1, prof.mix[1] + 0.2, rows)
    value = (prof.base_rate * (income / prof.level) ** 0.8 * (1 + 0.06 * (rooms - 5.4)) * np.exp(-0.004 * age)
             * np.exp(-0.006 * distance) * (1 + prof.mix[0] * coastal) * np.exp(rng.normal(0, 0.08, rows)))
    return pd.DataFrame({"value": np.round(value, 1), "median_income": income, "rooms": rooms, "house_age": age,
                         "distance_km": distance, "coastal": coastal})


_MAKERS: dict[str, Callable[[Profile, np.random.Generator, int, float], pd.DataFrame]] = {
    "churn": _churn, "house-prices": _house_prices, "home-value": _home_value,
}


def generate(model: str, tenant: str, rows: int | None = None, seed: int = 0, noise: float = 0.0,
             shift: float = 0.0) -> pd.DataFrame:
    """One tenant's dataset for `model`; `seed` picks the data drop, `noise` in [0, 1] destroys signal."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be between 0 and 1, got {noise}")
    prof = profile(tenant, model)
    count = prof.rows if rows is None else rows
    if count < 1:
        raise ValueError(f"rows must be at least 1, got {count}")
    rng = np.random.default_rng([tenant_seed(tenant, model), seed])
    frame = _MAKERS[model](prof, rng, count, shift)
    if noise > 0:
        target = TARGETS[model]
        picked = np.flatnonzero(rng.random(count) < noise)
        values = frame[target].to_numpy().copy()
        values[picked] = rng.permutation(values[picked])
        frame[target] = values
    return frame


def file_name(model: str, tenant: str, seed: int, noise: float = 0.0, shift: float = 0.0) -> str:
    """The CSV name of a data drop: a new seed, noise or shift never overwrites another drop."""
    extra = (f"-noise{noise:g}" if noise else "") + (f"-shift{shift:g}" if shift else "")
    return f"{model}-{tenant}-seed{seed}{extra}.csv"


def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write a dataset as CSV with a header, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def registry_pairs(root: Path) -> list[tuple[str, str]]:
    """Every (tenant, model) of the enabled tenants in the registry under `root`."""
    from mlops.config.tenants import load_registry  # only --all needs the platform package

    registry = load_registry(root / "platform.yaml", root / "tenants")
    return [(tid, model) for tid, tenant in sorted(registry.tenants.items()) if tenant.enabled for model in tenant.models]


def _summary(frame: pd.DataFrame, model: str) -> str:
    target = frame[TARGETS[model]]
    if model == "churn":
        return f"churn rate {target.mean():.2f}"
    return f"median {TARGETS[model]} {target.median():,.0f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=sorted(TARGETS), help="the model whose data to write")
    which.add_argument("--all", action="store_true", help="every tenant x model in the registry under --root")
    parser.add_argument("--tenant", help="tenant id (with --model)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the ml-ops checkout holding platform.yaml and tenants/ (with --all)")
    parser.add_argument("--rows", type=int, help="number of rows (default: the tenant's own size)")
    parser.add_argument("--seed", type=int, default=0, help="data drop: a new seed is a newer sample of the same tenant")
    parser.add_argument("--noise", type=float, default=0.0, help="fraction of labels shuffled, 0..1 (1.0 = a worse dataset)")
    parser.add_argument("--shift", type=float, default=0.0, help="move numeric features by this many standard deviations")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (with --all: OUT/<tenant>/<model>/), or a .csv file path with --model")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exits 2 with a one-line reason on bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.model and not args.tenant:
        parser.error("--tenant is required with --model")
    if args.all:
        try:
            pairs = registry_pairs(args.root)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # any registry problem is one line to the user
            print(f"error: cannot read the registry under {args.root}: {exc}", file=sys.stderr)
            return 2
    else:
        pairs = [(args.tenant, args.model)]
    for tenant, model in pairs:
        try:
            frame = generate(model, tenant, rows=args.rows, seed=args.seed, noise=args.noise, shift=args.shift)
        except ValueError as exc:
            parser.error(str(exc))
        name = file_name(model, tenant, args.seed, args.noise, args.shift)
        if args.all:
            path = args.out / tenant / model / name
        else:
            path = args.out if args.out.suffix == ".csv" else args.out / name
        write(frame, path)
        print(f"{path}\t{len(frame)} rows\t{_summary(frame, model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
