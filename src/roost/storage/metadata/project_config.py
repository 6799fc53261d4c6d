"""A project's pipeline configuration as one document, for a file kept in git and the admin API.

The document has up to ten sections: `unplanned` and `contracts` (the tracking plan),
`transformations` and `transformation_errors` (`store` or `quarantine`: what becomes of an
event a transformation fails on), `consent` (storage consent), `destinations`, `goals` (what the reports
count as converting: storage/metadata/goals.py), `timezone` (the dashboard's days), `site`
(the domains and website id Plausible's and Umami's trackers name the project by) and
`audiences` (storage/metadata/audiences.py). Applying it checks every
section first and writes only if all of them are right; each section it holds replaces what
the project had (a contract or destination not listed is removed), a section it leaves out
is left alone. Files: `roost.toml` with one `[projects.<slug>]` table per project, or a YAML
file per project with a `project: <slug>` key (or a `projects:` mapping).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from roost.errors import BadRequest
from roost.pipeline import plan as tracking_plan
from roost.pipeline.steps import compile_steps
from roost.storage.metadata.audiences import check_audiences
from roost.storage.metadata.contracts import ContractStore
from roost.storage.metadata.destinations import Destination, DestinationStore, parse
from roost.storage.metadata.goals import check_goals
from roost.storage.metadata.settings import (
    ProjectSettings,
    check_consent,
    check_site,
    check_timezone,
    check_transformation_errors,
)

SECTIONS = (
    "unplanned", "contracts", "transformations", "consent", "destinations", "goals", "timezone",
    "site", "audiences", "transformation_errors",
)  # fmt: skip


@dataclass
class Stores:
    contracts: ContractStore
    settings: ProjectSettings
    destinations: DestinationStore

    @classmethod
    def on(cls, engine: Engine) -> Stores:
        return cls(ContractStore(engine), ProjectSettings(engine), DestinationStore(engine))


def export(stores: Stores, project_id: int) -> dict[str, Any]:
    found, unplanned = stores.contracts.list(project_id)
    doc: dict[str, Any] = {
        "unplanned": unplanned,
        "contracts": [{"target": c.target, "action": c.action, "schema": c.schema} for c in found],
        "transformations": stores.settings.transformations(project_id),
        **(
            {"transformation_errors": "quarantine"}
            if stores.settings.transformation_errors(project_id) == "quarantine"
            else {}
        ),
        "destinations": [d.spec() for d in stores.destinations.configured(project_id)],
    }
    consent = stores.settings.consent(project_id)
    if consent:
        doc["consent"] = consent
    goals = stores.settings.goals(project_id)
    if goals:
        doc["goals"] = [g.spec() for g in goals]
    zone = stores.settings.timezone(project_id)
    if zone != "UTC":
        doc["timezone"] = zone
    site = stores.settings.site(project_id)
    if site:
        doc["site"] = site
    audiences = stores.settings.audiences(project_id)
    if audiences:
        doc["audiences"] = [a.spec() for a in audiences]
    return doc


def apply(stores: Stores, project_id: int, doc: Any, where: str = "") -> dict[str, int]:
    """Check the whole document, then write the sections it has; how many of each were set."""
    if not isinstance(doc, dict):
        raise BadRequest(f"{where or 'config'}: must be a table of sections", field=where or None)
    prefix = f"{where}." if where else ""
    unknown = sorted(set(doc) - {*SECTIONS, "project"})
    if unknown:
        raise BadRequest(
            f"{prefix}{unknown[0]}: unknown section (known: {', '.join(SECTIONS)})",
            field=f"{prefix}{unknown[0]}",
        )
    unplanned = doc.get("unplanned")
    if unplanned is not None and unplanned not in tracking_plan.UNPLANNED:
        raise BadRequest(
            f"{prefix}unplanned: must be one of {', '.join(tracking_plan.UNPLANNED)}",
            field=f"{prefix}unplanned",
        )
    found_contracts = None
    if "contracts" in doc:
        raw = _list(doc["contracts"], f"{prefix}contracts")
        found_contracts = [
            tracking_plan.check(
                c.get("target") if isinstance(c, dict) else None,
                c.get("schema") if isinstance(c, dict) else None,
                c.get("action", "allow") if isinstance(c, dict) else None,
                f"{prefix}contracts[{i}].",
            )
            for i, c in enumerate(raw)
        ]
        _unique([c.target for c in found_contracts], f"{prefix}contracts", "target")
    if "transformations" in doc:
        compile_steps(doc["transformations"], f"{prefix}transformations")
    if doc.get("transformation_errors") is not None:
        check_transformation_errors(doc["transformation_errors"], f"{prefix}transformation_errors")
    if doc.get("consent") is not None:
        check_consent(doc["consent"], f"{prefix}consent")
    if "goals" in doc:
        check_goals(doc["goals"] if doc["goals"] is not None else [], f"{prefix}goals")
    if doc.get("timezone") is not None:
        check_timezone(doc["timezone"], f"{prefix}timezone")
    if "audiences" in doc:
        check_audiences(doc["audiences"], f"{prefix}audiences")
    if doc.get("site") is not None:
        site = check_site(doc["site"], f"{prefix}site")
        stores.settings.check_site_free(project_id, site, f"{prefix}site")
    found_destinations: list[Destination] | None = None
    if "destinations" in doc:
        raw = _list(doc["destinations"], f"{prefix}destinations")
        found_destinations = [
            parse(d, project_id, f"{prefix}destinations[{i}]") for i, d in enumerate(raw)
        ]
        _unique([d.name for d in found_destinations], f"{prefix}destinations", "name")

    counts: dict[str, int] = {}
    if unplanned is not None:
        stores.contracts.set_unplanned(project_id, unplanned)
    if found_contracts is not None:
        stores.contracts.replace(project_id, found_contracts)
        counts["contracts"] = len(found_contracts)
    if "transformations" in doc:
        stores.settings.set_transformations(project_id, doc["transformations"])
        counts["transformations"] = len(doc["transformations"])
    if "transformation_errors" in doc:
        stores.settings.set_transformation_errors(project_id, doc["transformation_errors"])
    if "consent" in doc:
        stores.settings.set_consent(project_id, doc["consent"])
    if "timezone" in doc:
        stores.settings.set_timezone(project_id, doc["timezone"])
    if "site" in doc:
        stores.settings.set_site(project_id, doc["site"])
    if "audiences" in doc:
        stores.settings.set_audiences(project_id, doc["audiences"])
        counts["audiences"] = len(doc["audiences"] or [])
    if "goals" in doc:
        stores.settings.set_goals(project_id, doc["goals"] or [])
        counts["goals"] = len(doc["goals"] or [])
    if found_destinations is not None:
        existing = {d.name: d for d in stores.destinations.configured(project_id)}
        keep = {d.name for d in found_destinations}
        for name in existing.keys() - keep:
            stores.destinations.delete(project_id, name)
        for raw_destination, parsed in zip(doc["destinations"], found_destinations, strict=True):
            current = existing.get(parsed.name)
            if current is None or current.spec() != parsed.spec():
                stores.destinations.set(project_id, raw_destination)  # unchanged: left running
        counts["destinations"] = len(found_destinations)
    return counts


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"{where}: must be a list", field=where)
    return value


def _unique(names: list[str], where: str, key: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise BadRequest(
                f"{where}[{i}].{key}: {name!r} is listed twice", field=f"{where}[{i}].{key}"
            )
        seen.add(name)


MAX_DOCUMENT_BYTES = 1 << 20  # a pipeline document (or roost.toml) larger is refused


class _PlainYAML(yaml.SafeLoader):
    """YAML without anchors and aliases: a few hundred bytes of nested aliases expand to
    gigabytes (a "billion laughs"), and a configuration has no need of them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                None, None, "anchors and aliases (&, *) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes, where: str) -> Any:
    """A YAML document Roost reads (a pipeline document), bounded in size, without aliases."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise BadRequest(
            f"{where}: must be at most {MAX_DOCUMENT_BYTES} bytes (got {len(text)})", field=where
        )
    try:
        return yaml.load(text, Loader=_PlainYAML)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise BadRequest(f"{where}: not valid YAML ({exc})", field=where) from None
    except RecursionError:  # the composer recurses once per level of nesting
        raise BadRequest(f"{where}: nested too deep", field=where) from None


def read_file(path: Path, project: str | None = None) -> dict[str, Any]:
    """{project slug: document} from a roost.toml or a per-project YAML file; a file naming no
    project is `project`'s, if one is given."""
    text = path.read_bytes()
    if len(text) > MAX_DOCUMENT_BYTES:
        raise BadRequest(f"{path}: must be at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        if path.suffix in (".yaml", ".yml"):
            loaded = load_yaml(text, str(path)) or {}
        else:
            loaded = tomllib.loads(text.decode())
    except BadRequest as exc:
        raise BadRequest(exc.message) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{path}: cannot be read ({exc})") from None
    if not isinstance(loaded, dict):
        raise BadRequest(f"{path}: must hold a table")
    if "projects" in loaded:
        projects = loaded["projects"]
        if not isinstance(projects, dict):
            raise BadRequest(f"{path}: projects must be a table of project slugs", field="projects")
        return projects
    if "project" in loaded:
        return {str(loaded["project"]): loaded}
    if project is not None and set(loaded) & set(SECTIONS):
        return {project: loaded}
    return {}
