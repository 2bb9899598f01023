"""The one reading of AWS errors: a botocore `ClientError` as a code, a message and a one-line `MlopsError`.

Every adapter in `mlops/aws/` asks this module what an error means; none reads `exc.response` itself.
The codes are AWS's own (each service's API reference, "Errors", and the common errors of every API):
access errors mean a permission or credentials problem; not-found errors differ by service (SageMaker
answers `ValidationException` with a "could not find" message for most resources).
"""

from __future__ import annotations

from typing import Any

from mlops.errors import MlopsError

#: Credentials or permissions: the caller can fix it, retrying cannot.
ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
                          "InvalidClientTokenId", "ExpiredToken"})
#: The resource is not there, by service: SageMaker (`ResourceNotFound`), DynamoDB, ECR, S3, Lambda, SQS, SNS.
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "RepositoryNotFoundException",
                             "ImageNotFoundException", "NoSuchKey", "NoSuchBucket", "404", "NotFound",
                             "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFoundException"})
#: Conditional writes that lost (DynamoDB): the item is not in the state the write asked for.
CONDITION_FAILED = "ConditionalCheckFailedException"
_NOT_FOUND_WORDS = ("could not find", "does not exist", "not found")


def code(exc: BaseException) -> str:
    """The AWS error code of a `ClientError` (`""` when it has none); another exception's class name."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def message(exc: BaseException) -> str:
    """The AWS error message of a `ClientError`; another exception's text."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))
    return str(exc)


def describe(exc: BaseException) -> str:
    """`Code: message` on one line, at most 300 characters, as error lines quote AWS."""
    text = " ".join(f"{code(exc)}: {message(exc)}".split())
    return text[:300]


def is_access(exc: BaseException) -> bool:
    """Whether AWS refused the caller (permissions or credentials)."""
    return code(exc) in ACCESS_CODES


def is_not_found(exc: BaseException) -> bool:
    """Whether the resource does not exist (including SageMaker's ValidationException "could not find" and its
    runtime's ValidationError "... not found")."""
    found_code = code(exc)
    if found_code in NOT_FOUND_CODES:
        return True
    # SageMaker answers most unknown resources with ValidationException, its runtime API with ValidationError
    return found_code in ("ValidationException", "ValidationError") and any(word in message(exc).lower() for word in _NOT_FOUND_WORDS)


def is_condition_failed(exc: BaseException) -> bool:
    """Whether a DynamoDB conditional write lost."""
    return code(exc) == CONDITION_FAILED


def aws_error(action: str, exc: BaseException, *, access_hint: str = "check the role's permissions and that its credentials are current",
              not_found_hint: str | None = None, hint: str = "see the AWS error above") -> MlopsError:
    """One line for a failed AWS call: `not allowed to <action>`, `<action>: not found` or `cannot <action>: Code: message`."""
    if is_access(exc):
        return MlopsError(f"not allowed to {action}: {code(exc)}", access_hint)
    if not_found_hint is not None and is_not_found(exc):
        return MlopsError(f"cannot {action}: {describe(exc)}", not_found_hint)
    return MlopsError(f"cannot {action}: {describe(exc)}", hint)
