"""Version rules, table-driven: base, bump, channel, collisions (pure, no git, no AWS)."""

from __future__ import annotations

import pytest
from semver import Version

from mlops import versioning as v
from mlops.errors import MlopsError

MAIN = v.Pipeline(branch="main", pipeline_iid=41)


@pytest.mark.parametrize(
    ("tags", "bump", "pipeline", "expected"),
    [
        pytest.param([], "patch", MAIN, "0.1.0", id="first-release-patch"),
        pytest.param([], "major", MAIN, "0.1.0", id="first-release-whatever-the-bump"),
        pytest.param(["latest", "sha-1a2b3c"], "minor", MAIN, "0.1.0", id="first-release-only-non-version-tags"),
        pytest.param(["0.1.0"], "patch", MAIN, "0.1.1", id="patch"),
        pytest.param(["0.1.0"], "minor", MAIN, "0.2.0", id="minor"),
        pytest.param(["0.1.0", "0.1.1"], "major", MAIN, "1.0.0", id="major"),
        pytest.param(["1.3.9", "1.10.0", "1.9.2"], "patch", MAIN, "1.10.1", id="base-is-the-highest-not-the-last-sorted-as-text"),
        pytest.param(["1.3.0", "2.0.0-mr.4.1", "1.4.0-rc.1"], "minor", MAIN, "1.4.0", id="pre-releases-never-the-base"),
        pytest.param(["1.3.0", "latest", "build-77", "main"], "patch", MAIN, "1.3.1", id="non-semver-tags-ignored"),
        pytest.param(["1.3.0", "1.5", "01.9.0", "1.9.0.1", "v9.0"], "patch", MAIN, "1.3.1", id="invalid-tags-ignored"),
        pytest.param(["v1.3.0"], "patch", MAIN, "1.3.1", id="v-prefix-accepted"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch="develop", default_branch="develop"), "1.4.0",
                     id="default-branch-is-configurable"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch=None), "1.4.0", id="no-branch-means-release"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch="feature/Add_Thing", mr_iid=12, pipeline_iid=3), "1.4.0-mr.12.3",
                     id="merge-request"),
        pytest.param(["1.3.0"], "patch", v.Pipeline(branch="feature/Add_Thing", pipeline_iid=7), "1.3.1-feature-add-thing.7",
                     id="branch"),
        pytest.param([], "minor", v.Pipeline(branch="spike", pipeline_iid=2), "0.1.0-spike.2", id="branch-before-first-release"),
        pytest.param(["1.3.0", "1.4.0-mr.12.9"], "minor", v.Pipeline(mr_iid=12, pipeline_iid=3), "1.4.0-mr.12.10",
                     id="pre-release-after-the-highest-of-its-line"),
        pytest.param(["1.3.0", "1.4.0-mr.13.9"], "minor", v.Pipeline(mr_iid=12, pipeline_iid=3), "1.4.0-mr.12.3",
                     id="other-merge-requests-do-not-matter"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch="1234", pipeline_iid=1), "1.4.0-b-1234.1",
                     id="numeric-branch-name-is-prefixed"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch="x" * 90, pipeline_iid=1), "1.4.0-" + "x" * 40 + ".1",
                     id="long-branch-name-is-cut"),
        pytest.param(["1.3.0"], "minor", v.Pipeline(branch="fix", pipeline_iid=None), "1.4.0-fix.1",
                     id="no-pipeline-number-starts-at-one"),
    ],
)
def test_next_version(tags: list[str], bump: v.Bump, pipeline: v.Pipeline, expected: str) -> None:
    assert str(v.next_version(v.scan_tags(tags), bump, pipeline).version) == expected


def test_invalid_and_ignored_tags_are_reported() -> None:
    scan = v.scan_tags(["1.0.0", "latest", "1.5", "01.2.3", "2.0.0-rc.1", "sha-abc"])
    assert [tag for tag, _ in scan.invalid] == ["1.5", "01.2.3"]
    assert scan.ignored == ("latest", "sha-abc")
    assert scan.releases == (Version(1, 0, 0),)
    assert scan.prereleases == (Version.parse("2.0.0-rc.1"),)


@pytest.mark.parametrize(
    ("versions", "ordered"),
    [
        pytest.param(["1.4.0", "1.4.0-mr.12.3", "1.3.9"], ["1.3.9", "1.4.0-mr.12.3", "1.4.0"], id="pre-release-below-its-release"),
        pytest.param(["1.4.0-mr.12.10", "1.4.0-mr.12.9"], ["1.4.0-mr.12.9", "1.4.0-mr.12.10"], id="pipelines-sort-numerically"),
        pytest.param(["1.4.0-mr.9.1", "1.4.0-mr.10.1"], ["1.4.0-mr.9.1", "1.4.0-mr.10.1"], id="merge-requests-sort-numerically"),
    ],
)
def test_pre_releases_sort(versions: list[str], ordered: list[str]) -> None:
    assert [str(x) for x in sorted(Version.parse(s) for s in versions)] == ordered


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param([], "patch", id="no-commits"),
        pytest.param(["fix: off by one"], "patch", id="fix"),
        pytest.param(["docs: typo", "chore(ci): cache", "refactor: split"], "patch", id="other-types"),
        pytest.param(["Update train.py"], "patch", id="not-conventional"),
        pytest.param(["fix: a", "feat(data): new feature column"], "minor", id="feat"),
        pytest.param(["FEAT: shouting"], "minor", id="type-is-case-insensitive"),
        pytest.param(["feat!: drop the old input format"], "major", id="bang"),
        pytest.param(["refactor(api)!: rename"], "major", id="bang-with-scope"),
        pytest.param(["fix: a\n\nBREAKING CHANGE: the output has two columns now"], "major", id="footer"),
        pytest.param(["fix: a\n\nBREAKING-CHANGE: hyphenated"], "major", id="footer-hyphen"),
        pytest.param(["feat: a\n\nmentions a BREAKING CHANGE: inline only"], "minor", id="footer-must-start-a-line"),
        pytest.param(["feature: not the feat type"], "patch", id="feature-is-not-feat"),
    ],
)
def test_bump_from_commits(messages: list[str], expected: str) -> None:
    assert v.bump_from_commits(messages) == expected


@pytest.mark.parametrize(
    ("taken", "tags", "expected"),
    [
        pytest.param("0.1.0", ["0.1.0"], "0.2.0", id="first-release-lost"),
        pytest.param("1.4.0", ["1.3.0", "1.4.0"], "1.5.0", id="minor-after-the-winner"),
        pytest.param("1.3.1", ["1.3.0", "1.3.1"], "1.3.2", id="patch-after-the-winner"),
        pytest.param("2.0.0", ["1.3.0", "2.0.0"], "3.0.0", id="major-after-the-winner"),
        pytest.param("1.4.0", ["1.3.0", "1.4.0", "1.5.0", "1.6.0"], "1.7.0", id="after-the-highest-not-after-mine"),
        pytest.param("1.4.0", ["1.3.0"], "1.5.0", id="stale-listing-still-moves-on"),
        pytest.param("1.4.0-mr.12.3", ["1.3.0", "1.4.0-mr.12.3"], "1.4.0-mr.12.4", id="pre-release-next-number"),
        pytest.param("1.4.0-mr.12.3", ["1.3.0", "1.4.0-mr.12.3", "1.4.0-mr.12.8"], "1.4.0-mr.12.9", id="pre-release-after-highest"),
        pytest.param("1.4.0-mr.12.3", ["1.4.0", "1.4.0-mr.12.3"], "1.5.0-mr.12.3", id="pre-release-after-a-new-release"),
        pytest.param("1.4.0-feat-x.2", [], "1.4.0-feat-x.3", id="pre-release-stale-listing"),
    ],
)
def test_version_after_collision(taken: str, tags: list[str], expected: str) -> None:
    assert str(v.version_after_collision(Version.parse(taken), v.scan_tags(tags))) == expected


@pytest.mark.parametrize("text", ["1.4", "latest", "1.4.0+build.1", ""])
def test_bad_versions_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(MlopsError) as err:
        v.check_tag(v.parse_version(text))
    assert err.value.hint


def test_unusable_branch_name() -> None:
    with pytest.raises(MlopsError, match="no usable pre-release name"):
        v.Pipeline(branch="///", pipeline_iid=1).prerelease_prefix()
