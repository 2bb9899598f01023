"""The start port asks for the account once per session, not once per start (a Lambda starts many builds)."""

from __future__ import annotations

from collections import Counter

from mlops.pipeline.start import account_id


def test_the_account_is_asked_once_per_session(aws: None) -> None:  # pylint: disable=unused-argument
    import boto3

    calls: Counter[str] = Counter()
    session = boto3.session.Session()
    session.events.register("before-call.sts.GetCallerIdentity", lambda **_: calls.update(["sts"]))
    assert account_id(session) == account_id(session) == "123456789012"
    assert calls["sts"] == 1
    other = boto3.session.Session()
    other.events.register("before-call.sts.GetCallerIdentity", lambda **_: calls.update(["sts"]))
    assert account_id(other) == "123456789012"
    assert calls["sts"] == 2  # another session (other credentials, maybe) asks again
