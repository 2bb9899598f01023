"""Model images: plan the version, build with Buildah into an OCI archive, publish to ECR without overwriting.

- **Plan.** Read the published tags (ECR, through `mlops.aws.ecr`) and the model repository's git tags and
  commit messages (`git` as a subprocess), then let `mlops.versioning` decide.
- **Build.** `buildah bud` on `docker/<kind>/Dockerfile` with a staged context (the Dockerfile's helper
  files plus the model repository under `code/`), written to an OCI archive whose manifest digest is the
  digest the image will have in ECR. `write_oci_archive` makes a small image without Buildah (tests, and
  machines where Buildah cannot run).
- **Publish.** Upload the archive's blobs, then `PutImage` under the version tag. When the tag is taken
  (another pipeline won the race) re-list the tags, move to the version after the highest and retry, up to
  a bound, with a little random delay so that racers stop colliding with each other.

Boundaries: this module orchestrates; version rules live in `mlops.versioning`, ECR calls in
`mlops.aws.ecr`. boto3 clients are passed in.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semver import Version

from mlops import versioning
from mlops.errors import MlopsError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
KINDS = ("training", "inference")
#: Folders of a model repository never copied into an image.
SKIP_DIRS = frozenset({".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".tox", "node_modules",
                       ".mlops", "build", "dist"})
MAX_ATTEMPTS = 10
OPT_ML_FOLDERS = ("model", "input/config", "input/data", "output/data", "processing")


# -- the model repository's history (git) ---------------------------------------------------------------

def _git(repo: Path, *args: str) -> str | None:
    """Output of a git command in `repo`, or None when git or the repository cannot answer."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_revision(repo: Path) -> str | None:
    """The commit checked out in `repo` (CI_COMMIT_SHA when set), or None outside a git repository."""
    sha = _git(repo, "rev-parse", "HEAD")
    return sha.strip() if sha else os.environ.get("CI_COMMIT_SHA") or None


def git_tags(repo: Path) -> list[str]:
    """Tags of the model repository (empty outside a git repository)."""
    out = _git(repo, "tag", "--list")
    return out.split() if out else []


def commit_messages(repo: Path, since: str | None, last: int | None = None) -> list[str] | None:
    """Messages of the commits after `since` (a tag or commit) up to HEAD, or of the `last` N commits;
    None when git cannot tell (not a repository, or `since` is not in this clone)."""
    if _git(repo, "rev-parse", "--verify", "--quiet", "HEAD") is None:
        return None
    args = ["HEAD"] if last is None else ["-n", str(last), "HEAD"]
    if since is not None:
        if _git(repo, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}") is None:
            return None
        args = [f"{since}..HEAD"]
    out = _git(repo, "log", "--format=%B%x1e", *args)
    if out is None:
        return None
    return [m.strip() for m in out.split("\x1e") if m.strip()]


# -- version planning -----------------------------------------------------------------------------------

@dataclass
class VersionPlan:
    """The next version and how it was found (printed as text, JSON and dotenv)."""

    model: str
    repository: str
    version: str
    base: str | None
    bump: str
    bump_source: str
    channel: str
    commits: int | None
    registry_releases: int
    git_base: str | None
    invalid_tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def dotenv(self, image_uri: str | None = None) -> dict[str, str]:
        """Variables for GitLab `artifacts:reports:dotenv` (later jobs read them as CI variables)."""
        values = {
            "MODEL_NAME": self.model,
            "MODEL_VERSION": self.version,
            "MODEL_BASE_VERSION": self.base or "",
            "MODEL_VERSION_BUMP": self.bump,
            "MODEL_VERSION_CHANNEL": self.channel,
            "IMAGE_TAG": self.version,
            "ECR_REPOSITORY": self.repository,
        }
        if image_uri:
            values["IMAGE_URI"] = f"{image_uri}:{self.version}"
        return values

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return asdict(self)


def write_dotenv(path: Path, values: dict[str, str]) -> None:
    """A dotenv file as GitLab reads it: KEY=value lines, values without newlines."""
    lines = []
    for key, value in values.items():
        if "\n" in value:
            raise MlopsError(f"{key} has a line break", "dotenv values must fit on one line")
        lines.append(f"{key}={value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _commits_since(repo: Path, base: Version | None, git_scan: versioning.TagScan,
                   registry_revision: str | None) -> tuple[list[str] | None, str]:
    """The commit messages since the base, and how the range was found.

    The range starts at the base's git tag, else at the revision the base image was built from (its
    manifest annotation), else (a shallow clone, or a base built elsewhere) it is the last commit only.
    """
    if base is None:
        return commit_messages(repo, None), "all commits (first release)"
    for tag in (f"v{base}", str(base)):
        if tag in {f"v{v}" for v in git_scan.releases} | {str(v) for v in git_scan.releases}:
            messages = commit_messages(repo, tag)
            if messages is not None:
                return messages, f"commits since git tag {tag}"
    if registry_revision:
        messages = commit_messages(repo, registry_revision)
        if messages is not None:
            return messages, f"commits since {registry_revision[:12]} (the revision image {base} was built from)"
    return commit_messages(repo, None, last=1), f"only the last commit (no git tag or image revision of {base} in this clone)"


def plan_version(*, model: str, repository: str, registry_tags: list[str], repo: Path | None,
                 pipeline: versioning.Pipeline, bump: str | None = None,
                 revision_of: Callable[[str], str | None] | None = None) -> VersionPlan:
    """Compute the next version of a model from its registry tags and its repository's tags and commits.

    `revision_of(tag)` returns the git revision an image was built from (read from its manifest), used to
    find the commit range when the base version has no git tag.
    """
    notes: list[str] = []
    registry_scan = versioning.scan_tags(registry_tags)
    git_scan = versioning.scan_tags(git_tags(repo)) if repo is not None else versioning.TagScan()
    scan = registry_scan.merged(git_scan)
    base = scan.latest_release
    if git_scan.latest_release and registry_scan.latest_release != git_scan.latest_release:
        notes.append(f"git tags say {git_scan.latest_release}, the registry says {registry_scan.latest_release or 'nothing'}: "
                     f"the base is the higher, {base}")
    notes.extend(f"ignored invalid tag '{tag}': {why}" for tag, why in scan.invalid)

    commits: list[str] | None = None
    if bump is not None:
        kind, source = bump, "--bump"
    else:
        described = "no repository"
        if repo is not None:
            revision = revision_of(str(base)) if (base is not None and revision_of is not None
                                                  and base in registry_scan.releases) else None
            commits, described = _commits_since(repo, base, git_scan, revision)
        if commits is None:
            kind, source = "patch", "default (no git history to read: pass --bump)"
            if repo is not None:
                notes.append(f"could not read commits ({described}) in {repo}; using patch")
        else:
            kind, source = versioning.bump_from_commits(commits), f"conventional commits: {described}"
    if kind not in versioning.BUMPS:
        raise MlopsError(f"unknown bump '{kind}'", "use major, minor or patch")
    nxt = versioning.next_version(scan, kind, pipeline)  # type: ignore[arg-type]
    return VersionPlan(
        model=model, repository=repository, version=nxt.tag, base=str(base) if base else None, bump=kind,
        bump_source=source, channel=nxt.channel, commits=None if commits is None else len(commits),
        registry_releases=len(registry_scan.releases),
        git_base=str(git_scan.latest_release) if git_scan.latest_release else None,
        invalid_tags=[tag for tag, _ in scan.invalid], notes=notes,
    )


# -- OCI archives ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OciImage:
    """An image inside an OCI archive: its manifest bytes (whose sha256 is the image digest) and its blobs."""

    archive: Path
    manifest: bytes
    media_type: str
    digest: str
    blobs: tuple[str, ...]

    def chunks(self, digest: str) -> Callable[[int], Iterator[bytes]]:
        """A reader of one blob in parts of a given size, for the ECR upload."""
        def read(part_size: int) -> Iterator[bytes]:
            with tarfile.open(self.archive) as tar:
                member = tar.extractfile(_blob_name(digest))
                if member is None:
                    raise MlopsError(f"{self.archive} lacks blob {digest}", "build the archive again")
                while chunk := member.read(part_size):
                    yield chunk
        return read


def _blob_name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_oci_archive(path: Path) -> OciImage:
    """Open an OCI archive (as `buildah push ... oci-archive:` writes it) and find its single image."""
    if not path.is_file():
        raise MlopsError(f"image archive {path} not found", "build it first with mlops image build --out FILE")
    try:
        with tarfile.open(path) as tar:
            def read(name: str) -> bytes:
                member = tar.extractfile(name.lstrip("./"))
                if member is None:
                    raise KeyError(name)
                return member.read()

            index = json.loads(read("index.json"))
            descriptors = index.get("manifests", [])
            if len(descriptors) != 1:
                raise MlopsError(f"{path} holds {len(descriptors)} images", "publish an archive of exactly one image")
            digest = descriptors[0]["digest"]
            manifest = read(_blob_name(digest))
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise MlopsError(f"{path} is not a readable OCI archive: {exc}", "build it again with mlops image build") from exc
    if _sha256(manifest) != digest:
        raise MlopsError(f"{path}: the manifest does not match its digest {digest}", "the archive is corrupt: build it again")
    parsed = json.loads(manifest)
    blobs = tuple([parsed["config"]["digest"], *[layer["digest"] for layer in parsed.get("layers", [])]])
    media_type = parsed.get("mediaType") or descriptors[0].get("mediaType") or OCI_MANIFEST
    return OciImage(archive=path, manifest=manifest, media_type=media_type, digest=digest, blobs=blobs)


def _tar_layer(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A deterministic tar of `files` (path -> content), owned by root, dated 1970."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(files[name]), mode, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write_oci_archive(out: Path, files: dict[str, bytes], *, config: dict[str, Any] | None = None,
                      annotations: dict[str, str] | None = None) -> OciImage:
    """Write a one-layer OCI image holding `files`, without Buildah. Returns it as `read_oci_archive` would."""
    layer_tar = _tar_layer(files)
    layer = gzip.compress(layer_tar, mtime=0)
    image_config = {
        "architecture": "amd64", "os": "linux", "config": config or {},
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer_tar)]},
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _sha256(layer), "size": len(layer)}],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": _sha256(manifest_bytes), "size": len(manifest_bytes)}]}
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
        _blob_name(_sha256(layer)): layer,
        _blob_name(_sha256(config_bytes)): config_bytes,
        _blob_name(_sha256(manifest_bytes)): manifest_bytes,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_tar_layer(entries))
    return read_oci_archive(out)


# -- build with Buildah ---------------------------------------------------------------------------------

@dataclass
class BuildResult:
    """What `mlops image build` reports."""

    kind: str
    archive: str
    digest: str
    base_image: str
    revision: str | None
    seconds: float


def buildah_problem() -> str | None:
    """Why Buildah cannot build here, or None when it can."""
    if shutil.which("buildah") is None:
        return "buildah is not installed (Debian: apt-get install buildah; make system-deps does it as root)"
    try:
        done = subprocess.run(["buildah", "version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"buildah does not run: {exc}"
    if done.returncode != 0:
        return f"buildah does not run: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return None


def _copy_repo(repo: Path, dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        del folder
        return {n for n in names if n in SKIP_DIRS or n.endswith(".pyc")}
    shutil.copytree(repo, dest, ignore=ignore, symlinks=False)


def stage_context(repo: Path, kind: str, docker_dir: Path, dest: Path) -> Path:
    """The build context: `docker/<kind>/*` at the top, the model repository under `code/`."""
    if kind not in KINDS:
        raise MlopsError(f"unknown image kind '{kind}'", f"use one of {', '.join(KINDS)}")
    source = docker_dir / kind
    if not (source / "Dockerfile").is_file():
        raise MlopsError(f"{source / 'Dockerfile'} not found", "run from the ml-ops checkout or set MLOPS_ROOT")
    shutil.copytree(source, dest)
    _copy_repo(repo, dest / "code")
    if not (dest / "code" / "requirements.txt").is_file():
        (dest / "code" / "requirements.txt").write_text("", encoding="utf-8")
    # The /opt/ml folders SageMaker mounts into; git keeps no empty folders, so they are made here.
    for folder in OPT_ML_FOLDERS:
        (dest / "opt-ml" / folder).mkdir(parents=True, exist_ok=True)
    return dest


def _buildah(args: list[str], storage: list[str], what: str) -> str:
    try:
        done = subprocess.run(["buildah", *storage, *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise MlopsError(f"buildah could not start: {exc}", "install buildah (make system-deps)") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        hint = "the last lines of buildah's output are above"
        if "pull" in tail or "registry" in tail:
            hint = ("the base image cannot be pulled from here: pass --base-image (MLOPS_BASE_IMAGE) with one you can reach, "
                    "or --builder source where no base is available")
        raise MlopsError(f"buildah failed to {what}:\n{tail}", hint)
    return done.stdout


def build_image(*, repo: Path, kind: str, docker_dir: Path, out: Path, base_image: str | None,
                entry_points: dict[str, str], model: str, revision: str | None,
                storage_root: Path | None = None, log: Callable[[str], None] = lambda _m: None) -> BuildResult:
    """`buildah bud` the model's image of one kind into an OCI archive at `out`."""
    problem = buildah_problem()
    if problem:
        raise MlopsError(f"cannot build images here: {problem}", "build in the CI image that has buildah, or run make system-deps")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlops-build-") as tmp:
        work = Path(tmp)
        context = stage_context(repo, kind, docker_dir, work / "context")
        # A private store per build: builds never see each other's half-made images, and nothing is left
        # behind. The CI job is a fresh container anyway, so a shared cache would gain little.
        root = storage_root or work / "storage"
        storage = ["--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
        args = ["bud", "--isolation", "chroot", "--format", "oci", "--layers=false", "--pull=false",
                "--file", str(context / "Dockerfile"), "--tag", f"localhost/{model}:build"]
        if base_image:
            args += ["--build-arg", f"BASE_IMAGE={base_image}"]
        for step, script in sorted(entry_points.items()):
            args += ["--build-arg", f"{step.upper()}_ENTRY={script}"]
        args += ["--annotation", f"org.opencontainers.image.title={model}-{kind}"]
        if revision:
            args += ["--annotation", f"{REVISION}={revision}", "--label", f"{REVISION}={revision}"]
        log(f"buildah bud {kind} image of {model} from {repo}")
        _buildah([*args, str(context)], storage, f"build the {kind} image")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        _buildah(["push", f"localhost/{model}:build", f"oci-archive:{out.resolve()}:{model}-{kind}"], storage,
                 "write the OCI archive")
        if storage_root is None:
            # vfs layers are root-owned copies; let buildah remove what it made before the folder goes.
            _buildah(["rmi", "--all", "--force"], storage, "clean up its store")
    image = read_oci_archive(out)
    return BuildResult(kind=kind, archive=str(out), digest=image.digest, base_image=base_image or "(Dockerfile default)",
                       revision=revision, seconds=round(time.monotonic() - started, 1))


def pack_source_image(*, repo: Path, kind: str, docker_dir: Path, out: Path, entry_points: dict[str, str],
                      model: str, revision: str | None) -> BuildResult:
    """An image of the model's code and entry program only, without Buildah and without a base image.

    It has the same files, user, working folder, environment and command as the Dockerfile would give on
    top of a base, but no operating system or Python: it cannot run. It exists so that the embedded
    default (no Docker, no Buildah, no registry to pull a base from) can still version and publish a real,
    content-addressed artifact through the same ECR calls; the local pipeline engine runs the code from
    the model repository, not from this image.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlops-source-") as tmp:
        context = stage_context(repo, kind, docker_dir, Path(tmp) / "context")
        files = {f"opt/program/{p.name}": p.read_bytes() for p in sorted((context / "program").iterdir()) if p.is_file()}
        files.update({f"opt/ml/code/{p.relative_to(context / 'code').as_posix()}": p.read_bytes()
                      for p in sorted((context / "code").rglob("*")) if p.is_file()})
    env = [f"MLOPS_{step.upper()}_ENTRY={script}" for step, script in sorted(entry_points.items())]
    env += ["MLOPS_CODE_DIR=/opt/ml/code", "PATH=/opt/program:/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED=1"]
    config: dict[str, Any] = {"User": "1000:1000", "WorkingDir": "/opt/ml/code", "Env": env,
                              "Cmd": ["train" if kind == "training" else "serve"]}
    if kind == "inference":
        config["ExposedPorts"] = {"8080/tcp": {}}
        env.append("SAGEMAKER_BIND_TO_PORT=8080")
    annotations = {"org.opencontainers.image.title": f"{model}-{kind}", "org.opencontainers.image.base.name": "none (source only)"}
    if revision:
        annotations[REVISION] = revision
    built = write_oci_archive(out, files, config=config, annotations=annotations)
    return BuildResult(kind=kind, archive=str(out), digest=built.digest, base_image="none (source only)", revision=revision,
                       seconds=round(time.monotonic() - started, 1))


# -- publish --------------------------------------------------------------------------------------------

@dataclass
class PublishResult:
    """What `mlops image publish` reports."""

    model: str
    repository: str
    requested_version: str
    version: str
    digest: str
    image_uri: str
    attempts: int
    collisions: list[str]
    uploaded_blobs: int
    scan_on_push: bool


#: The first retry waits up to this many turns of the attempt that just failed (a turn = its list + put time).
JITTER_SLOTS = 20
JITTER_FLOOR = 0.05
JITTER_CAP = 30.0


def jitter(attempt: int, rng: random.Random, turn: float, slots: float = JITTER_SLOTS, cap: float = JITTER_CAP) -> float:
    """Random delay before retry `attempt` (1 = first retry): full jitter over a window that doubles.

    Racers that lost to the same winner all see the same tags, so without a delay they would all try the
    same next version again and only one would get through per round. A racer gets through when nobody
    else publishes between its listing and its `PutImage` (one "turn"), so the window is counted in turns
    of this racer's own last attempt: it widens by itself when the registry (or this machine) is slow.
    """
    return rng.uniform(0, min(cap, max(JITTER_FLOOR, slots * turn) * 2 ** (attempt - 1)))


def upload_image(client: Any, repository: str, image: OciImage) -> int:
    """Upload the blobs the repository lacks; return how many were uploaded."""
    from mlops.aws import ecr

    missing = ecr.missing_blobs(client, repository, list(image.blobs))
    for digest in missing:
        ecr.upload_blob(client, repository, digest, image.chunks(digest))
    return len(missing)


def publish(client: Any, *, model: str, repository: str, version: str, image: OciImage,
            max_attempts: int = MAX_ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
            rng: random.Random | None = None, jitter_slots: float = JITTER_SLOTS,
            log: Callable[[str], None] = lambda _m: None) -> PublishResult:
    """Publish `image` under `version`, or under the next free version if another pipeline took it."""
    from mlops.aws import ecr

    rng = rng or random.Random()
    candidate: Version = versioning.parse_version(version)  # a bad version is refused before any AWS call
    versioning.check_tag(candidate)
    repo = ecr.describe_repository(client, repository)
    if not repo.immutable:
        raise MlopsError(f"ECR repository {repository} has mutable tags: publishing could overwrite a version",
                         "set image_tag_mutability = IMMUTABLE on the repository (Terraform platform module)")
    uploaded = upload_image(client, repository, image)
    collisions: list[str] = []
    turn_started = time.monotonic()
    for attempt in range(1, max_attempts + 1):
        try:
            digest = ecr.put_image(client, repository, str(candidate), image.manifest, image.media_type, image.digest)
        except ecr.TagTaken as taken:
            collisions.append(f"{taken.tag} -> {taken.digest}")
            log(f"version {candidate} was published by someone else ({taken.digest}); trying the next one")
            if attempt == max_attempts:
                break
            sleep(jitter(attempt, rng, time.monotonic() - turn_started, jitter_slots))
            turn_started = time.monotonic()
            candidate = versioning.version_after_collision(candidate, versioning.scan_tags(ecr.list_tags(client, repository)))
            continue
        return PublishResult(model=model, repository=repository, requested_version=version, version=str(candidate),
                             digest=digest, image_uri=f"{repo.uri}:{candidate}", attempts=attempt, collisions=collisions,
                             uploaded_blobs=uploaded, scan_on_push=repo.scan_on_push)
    raise MlopsError(f"gave up publishing {model} after {max_attempts} attempts: every version tried was taken "
                     f"({', '.join(c.split(' ')[0] for c in collisions)})",
                     "too many pipelines publish this model at once; retry the job")
