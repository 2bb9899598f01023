"""Semantic versions of a model: which version a pipeline publishes next, and which after a lost race.

The base is the highest *release* version already published (ECR tags of `<project>/<model>`, with the model
repository's git tags as a fallback and cross-check); pre-releases and tags that are not versions never count.
The bump comes from the conventional commits since that base (`feat` -> minor, `!`/`BREAKING CHANGE` ->
major, anything else -> patch) or from an explicit choice. The default branch publishes releases; other
branches and merge requests publish pre-releases that sort below the release they lead to and name the
pipeline (`1.4.0-mr.12.3`, `1.4.0-feature-x.7`). Versions carry no build metadata: ECR tags do not allow `+`.

This module is pure: plain strings in, `semver.Version` out; no git, no boto3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from semver import Version

from mlops.errors import MlopsError

Bump = Literal["major", "minor", "patch"]
BUMPS: tuple[Bump, ...] = ("major", "minor", "patch")
FIRST_RELEASE = Version(0, 1, 0)
#: ECR image tags: at most 128 characters of letters, digits, `.`, `_` and `-`.
TAG_MAX = 128
BRANCH_SLUG_MAX = 40

# A tag "looks like a version" when it starts like one; such a tag that is not valid semver is reported
# as invalid (someone meant a version and got it wrong), other tags (`latest`, `sha-1a2b`) are just ignored.
_VERSION_LIKE = re.compile(r"^v?\d+\.\d")
_CONVENTIONAL = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?:\s+(?P<subject>\S.*)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s", re.MULTILINE)


@dataclass(frozen=True)
class TagScan:
    """Published tags sorted into releases, pre-releases, ignored and invalid ones."""

    releases: tuple[Version, ...] = ()
    prereleases: tuple[Version, ...] = ()
    ignored: tuple[str, ...] = ()
    invalid: tuple[tuple[str, str], ...] = ()

    @property
    def latest_release(self) -> Version | None:
        """The highest release version, or None when nothing was released yet."""
        return max(self.releases) if self.releases else None

    def merged(self, other: "TagScan") -> "TagScan":
        """Both scans together (e.g. ECR tags and git tags)."""
        return TagScan(
            releases=tuple(sorted(set(self.releases) | set(other.releases))),
            prereleases=tuple(sorted(set(self.prereleases) | set(other.prereleases))),
            ignored=self.ignored + other.ignored,
            invalid=self.invalid + other.invalid,
        )


def parse_version(text: str) -> Version:
    """Parse a version as a user typed it (`1.4.0`, `v1.4.0`); MlopsError when it is not semver."""
    try:
        return Version.parse(text[1:] if text.startswith("v") else text)
    except (ValueError, TypeError) as exc:
        raise MlopsError(f"'{text}' is not a semantic version", "use MAJOR.MINOR.PATCH, e.g. 1.4.0 or 1.4.0-mr.12.3") from exc


def scan_tags(tags: Iterable[str]) -> TagScan:
    """Sort tags into releases, pre-releases, ignored (not versions) and invalid (broken versions)."""
    releases: set[Version] = set()
    prereleases: set[Version] = set()
    ignored: list[str] = []
    invalid: list[tuple[str, str]] = []
    for tag in tags:
        text = tag[1:] if tag.startswith("v") else tag
        try:
            version = Version.parse(text)
        except ValueError as exc:
            if _VERSION_LIKE.match(tag):
                invalid.append((tag, str(exc)))
            else:
                ignored.append(tag)
            continue
        if version.build:
            invalid.append((tag, "build metadata (+...) is not allowed in image tags"))
        elif version.prerelease:
            prereleases.add(version)
        else:
            releases.add(version)
    return TagScan(tuple(sorted(releases)), tuple(sorted(prereleases)), tuple(ignored), tuple(invalid))


@dataclass(frozen=True)
class Commit:
    """One commit message read as a conventional commit (or not)."""

    type: str | None
    breaking: bool
    subject: str

    @property
    def bump(self) -> Bump:
        """What this commit alone asks for."""
        if self.breaking:
            return "major"
        if self.type == "feat":
            return "minor"
        return "patch"


def parse_commit(message: str) -> Commit:
    """Read a commit message: `type(scope)!: subject`, with a `BREAKING CHANGE:` footer also meaning major."""
    header = message.strip().splitlines()[0] if message.strip() else ""
    match = _CONVENTIONAL.match(header)
    breaking = bool(_BREAKING_FOOTER.search(message))
    if match is None:
        return Commit(type=None, breaking=breaking, subject=header)
    return Commit(type=match["type"].lower(), breaking=breaking or bool(match["bang"]), subject=match["subject"])


def bump_from_commits(messages: Iterable[str]) -> Bump:
    """The largest bump any commit asks for; patch when there are none (a rebuild is still a new version)."""
    bumps = {parse_commit(m).bump for m in messages}
    for kind in BUMPS:
        if kind in bumps:
            return kind
    return "patch"


def bump(version: Version, kind: Bump) -> Version:
    """The next release after `version` for a bump kind."""
    if kind not in BUMPS:
        raise MlopsError(f"unknown bump '{kind}'", "use major, minor or patch")
    return version.finalize_version().next_version(kind)


def bump_kind_of(release: Version) -> Bump:
    """Which bump produced a release (`2.0.0` major, `1.4.0` minor, `1.4.3` patch)."""
    if release.patch:
        return "patch"
    if release.minor or release.major == 0:
        return "minor"
    return "major"


def branch_slug(branch: str) -> str:
    """A branch name as a pre-release identifier: lowercase letters, digits and single hyphens."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:BRANCH_SLUG_MAX].strip("-")
    if not slug:
        raise MlopsError(f"branch '{branch}' gives no usable pre-release name", "pass --branch with letters or digits")
    if slug.isdigit() or slug == "mr":
        # An all-digit identifier would compare as a number (and may not start with 0); `mr` is for merge requests.
        slug = f"b-{slug}"
    return slug


@dataclass(frozen=True)
class Pipeline:
    """Where the version is computed: the branch, the merge request and the pipeline's number."""

    branch: str | None = None
    default_branch: str = "main"
    mr_iid: int | None = None
    pipeline_iid: int | None = None

    @property
    def channel(self) -> Literal["release", "mr", "branch"]:
        """Releases on the default branch, pre-releases everywhere else."""
        if self.mr_iid is not None:
            return "mr"
        if self.branch is None or self.branch == self.default_branch:
            return "release"
        return "branch"

    def prerelease_prefix(self) -> str | None:
        """`mr.<iid>` for merge requests, the branch slug for branches, None for releases."""
        if self.channel == "mr":
            return f"mr.{self.mr_iid}"
        if self.channel == "branch":
            return branch_slug(self.branch or "")
        return None


@dataclass(frozen=True)
class NextVersion:
    """The computed version with everything that led to it."""

    version: Version
    base: Version | None
    bump: Bump
    channel: str
    scan: TagScan = field(default_factory=TagScan)

    @property
    def tag(self) -> str:
        """The image tag: the version itself."""
        return str(self.version)


def _prefix_of(version: Version) -> str:
    return str(version.prerelease).rsplit(".", 1)[0]


def _prerelease_after(release: Version, prefix: str, number: int, scan: TagScan, floor: Version | None = None) -> Version:
    """`release-prefix.number`, or after the highest pre-release of that line already taken."""
    candidate = release.replace(prerelease=f"{prefix}.{number}")
    taken = [v for v in scan.prereleases if v.finalize_version() == release and _prefix_of(v) == prefix]
    if floor is not None and floor.finalize_version() == release and _prefix_of(floor) == prefix:
        taken.append(floor)
    if taken and max(taken) >= candidate:
        candidate = max(taken).bump_prerelease()
    return candidate


def next_version(scan: TagScan, kind: Bump, pipeline: Pipeline) -> NextVersion:
    """The version a pipeline publishes next, given what is published and the bump it asks for."""
    base = scan.latest_release
    release = FIRST_RELEASE if base is None else bump(base, kind)
    prefix = pipeline.prerelease_prefix()
    version = release
    if prefix is not None:
        version = _prerelease_after(release, prefix, pipeline.pipeline_iid or 1, scan)
    check_tag(version)
    return NextVersion(version=version, base=base, bump=kind, channel=pipeline.channel, scan=scan)


def version_after_collision(taken: Version, scan: TagScan) -> Version:
    """The version to try after `taken` turned out to be published already (another pipeline won the race).

    The bump kind is read from the taken version itself, so a publisher needs nothing but the version it
    tried and a fresh list of tags: a release moves past the highest release by the same kind of bump; a
    pre-release moves past the highest pre-release of its own line. The result is always above `taken`,
    even when the listing is stale and does not show the tag that collided yet.
    """
    release = taken.finalize_version()
    kind = bump_kind_of(release)
    latest = scan.latest_release
    if latest is not None and latest >= release:
        release = bump(latest, kind)
    if not taken.prerelease:
        return release if release > taken else bump(taken, kind)
    prefix = _prefix_of(taken)
    number = int(str(taken.prerelease).rsplit(".", 1)[1]) if "." in str(taken.prerelease) else 1
    version = _prerelease_after(release, prefix, number, scan, floor=taken)
    check_tag(version)
    return version


def check_tag(version: Version) -> str:
    """The version as an ECR image tag; MlopsError when ECR would refuse it."""
    tag = str(version)
    if len(tag) > TAG_MAX or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", tag):
        raise MlopsError(f"version '{tag}' cannot be an ECR image tag", "use a shorter branch name")
    return tag
