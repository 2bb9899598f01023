"""Input and output tables of the Terraform modules' READMEs, generated from variables.tf and outputs.tf.

Like terraform-docs (which cannot be installed here), the table sits between `<!-- BEGIN_TF_DOCS -->` and
`<!-- END_TF_DOCS -->` in each `terraform/modules/<module>/README.md`; the text around it is written by
hand. The parser reads only what `terraform fmt` output looks like: top-level blocks closed by a `}` in
column 0 and attributes indented by two spaces. `python -m mlops.tfdocs` rewrites the tables;
`--check` exits 1 when one is out of date (a test runs the same check).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
_BLOCK = re.compile(r'^(variable|output) "([^"]+)" \{\n(.*?)^\}', re.M | re.S)
_ATTRIBUTE = re.compile(r"^  ([a-z_]+)\s*=\s*(.*)$")
_HEREDOC = re.compile(r"^<<-?([A-Z]+)$")


@dataclass(frozen=True)
class Item:
    """One variable or output."""

    name: str
    description: str
    type: str = ""
    default: str | None = None


def _attributes(body: str) -> dict[str, str]:
    """Top-level attributes of a block body (nested blocks such as `validation` are skipped)."""
    found: dict[str, str] = {}
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        match = _ATTRIBUTE.match(lines[i])
        i += 1
        if not match:
            continue
        key, value = match.groups()
        heredoc = _HEREDOC.match(value.strip())
        if heredoc:
            text = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                text.append(lines[i].strip())
                i += 1
            i += 1
            found[key] = " ".join(text)
            continue
        # A value continues on lines indented deeper than the attribute.
        while i < len(lines) and (lines[i].startswith("   ") or lines[i].startswith("  )") or lines[i].startswith("  }")
                                  or lines[i].startswith("  ]")):
            value += " " + lines[i].strip()
            i += 1
        found[key] = re.sub(r"\s+", " ", value).strip()
    return found


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('\\"', '"')
    return value


def parse(path: Path, kind: str) -> list[Item]:
    """The variables or outputs declared in a file, in file order."""
    items = []
    for block_kind, name, body in _BLOCK.findall(path.read_text(encoding="utf-8")) if path.is_file() else []:
        if block_kind != kind:
            continue
        attrs = _attributes(body)
        items.append(Item(name, _unquote(attrs.get("description", "")), attrs.get("type", ""), attrs.get("default")))
    return items


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def tables(module: Path) -> str:
    """The Markdown of a module's inputs and outputs."""
    lines = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "| --- | --- | --- | --- | :---: |"]
    for item in parse(module / "variables.tf", "variable"):
        default = "n/a" if item.default is None else f"`{_cell(item.default)}`"
        lines.append(f"| `{item.name}` | {_cell(item.description)} | `{_cell(item.type)}` | {default} | "
                     f"{'yes' if item.default is None else 'no'} |")
    lines += ["", "## Outputs", "", "| Name | Description |", "| --- | --- |"]
    lines += [f"| `{item.name}` | {_cell(item.description)} |" for item in parse(module / "outputs.tf", "output")]
    return "\n".join(lines)


def render(readme: str, module: Path) -> str:
    """The README with its generated section replaced (appended when the markers are missing)."""
    section = f"{BEGIN}\n{tables(module)}\n{END}"
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        return head + section + rest.split(END, 1)[1]
    return readme.rstrip("\n") + "\n\n" + section + "\n"


def modules(terraform_dir: Path) -> list[Path]:
    """Every module folder under terraform/modules."""
    return sorted(p for p in (terraform_dir / "modules").iterdir() if (p / "variables.tf").is_file())


def outdated(terraform_dir: Path, write: bool) -> list[Path]:
    """READMEs whose tables differ from the code; rewritten when `write`."""
    stale = []
    for module in modules(terraform_dir):
        readme = module / "README.md"
        current = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {module.name}\n"
        wanted = render(current, module)
        if wanted != current:
            stale.append(readme)
            if write:
                readme.write_text(wanted, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops.tfdocs [--check] [TERRAFORM_DIR]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    terraform_dir = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "terraform"
    stale = outdated(terraform_dir, write=not check)
    for readme in stale:
        print(f"{'out of date' if check else 'rewrote'}: {readme}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
