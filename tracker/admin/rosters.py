"""Rosters: people from an office's Excel or CSV list, previewed, imported all or nothing.

A row is matched to a person by phone number, so re-importing a roster updates those
people instead of adding them again; rows without a number always add a person. Errors
name the row as Excel numbers it (the header is row 1) and the column as its header is
written in the file.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openpyxl

from .. import store
from ..extensions import db
from ..messages import Message, UserError
from ..models import Person, User
from . import devices as device_service
from . import people as people_service
from .rules import AdminError, AdminNotFound, invalid, normal_phone

log = logging.getLogger(__name__)

MAX_ROWS = 5000
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEVICES = 500

# Header as written (English case-insensitively) -> column.
HEADERS = {
    "姓名": "name",
    "name": "name",
    "手机号": "phone",
    "电话": "phone",
    "phone": "phone",
    "角色": "role",
    "role": "role",
    "单位": "unit",
    "所属单位": "unit",
    "unit": "unit",
    "巡查网格": "patrol_grid",
    "责任网格": "patrol_grid",
    "patrol_grid": "patrol_grid",
}
# The headers an export writes, in the import's order.
EXPORT_HEADERS = {
    "name": "姓名",
    "phone": "手机号",
    "role": "角色",
    "unit": "单位",
    "patrol_grid": "巡查网格",
}
ROLE_NAMES = {
    "志愿者": "volunteer",
    "街巷长": "street_chief",
    "网格员": "grid_worker",
    "巡逻队员": "patrol",
}
# The person's field each column fills.
FIELDS = {
    "name": "name",
    "phone": "phone",
    "role": "role",
    "unit": "unit_id",
    "patrol_grid": "patrol_unit_id",
}


class RosterFileError(AdminError):
    """The file cannot be read as a roster at all (400, naming `file`)."""


@dataclass
class RosterRow:
    """One row of a roster: where it is, what it says, and what importing it would do."""

    row: int
    values: dict[str, Any] = field(default_factory=dict)
    action: str = "create"
    person_id: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the row as the preview's JSON."""
        return {
            "row": self.row,
            "name": self.values.get("name"),
            "phone": self.values.get("phone"),
            "role": self.values.get("role"),
            "unit_id": self.values.get("unit_id"),
            "patrol_unit_id": self.values.get("patrol_unit_id"),
            "action": self.action,
            "person_id": self.person_id,
            "errors": self.errors,
        }

    def refuse(self, column: str, error: UserError) -> None:
        """Add an error of a column (its header as written)."""
        self.errors.append({"column": column, "error": str(error), "message": error.localized()})


def _file_error(problem: Message) -> RosterFileError:
    """Return the error `file: rule`."""
    return RosterFileError("%(field)s: %(problem)s", field="file", problem=problem)


def read_table(raw: bytes) -> list[list[Any]]:
    """Return the rows of an XLSX workbook's first sheet or of a CSV file (UTF-8 or GBK).

    Raises:
        RosterFileError: too big, too many rows, or neither XLSX nor CSV text.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise _file_error(Message("must be at most %(max_bytes)s bytes", max_bytes=MAX_FILE_BYTES))
    if raw.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(raw)
    elif raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise _file_error(Message("an old Excel .xls workbook: save it as .xlsx or CSV"))
    else:
        rows = _csv_rows(raw)
    if len(rows) > MAX_ROWS + 1:
        raise _file_error(Message("more than %(max_rows)s rows", max_rows=MAX_ROWS))
    return rows


def _xlsx_rows(raw: bytes) -> list[list[Any]]:
    """Return the rows of an XLSX workbook's first sheet, reading at most MAX_ROWS + 1."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a broken zip or workbook
        raise _file_error(Message("not a readable XLSX workbook")) from None
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for values in sheet.iter_rows(values_only=True):
            rows.append(list(values))
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    except Exception:
        raise _file_error(Message("not a readable XLSX workbook")) from None
    finally:
        workbook.close()


def _csv_rows(raw: bytes) -> list[list[Any]]:
    """Return the rows of CSV text in UTF-8 (with or without BOM) or GBK."""
    if b"\0" in raw:
        raise _file_error(Message("neither an XLSX workbook nor CSV text"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise _file_error(
                Message("CSV text must be UTF-8 or GBK (an Excel .xlsx file is fine too)")
            ) from None
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise _file_error(Message("not valid CSV (%(detail)s)", detail=str(exc))) from None


def _cell(value: Any) -> str:
    """Return a cell as text: numbers without a trailing .0 (phones typed as numbers)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _columns(header: list[Any]) -> dict[str, tuple[int, str]]:
    """Return column -> (index, header as written), refusing missing or repeated columns."""
    columns: dict[str, tuple[int, str]] = {}
    for index, value in enumerate(header):
        written = _cell(value)
        column = HEADERS.get(written) or HEADERS.get(written.lower())
        if column is None:
            continue
        if column in columns:
            raise _file_error(
                Message(
                    "columns %(first)r and %(second)r both hold %(column)s",
                    first=columns[column][1],
                    second=written,
                    column=column,
                )
            )
        columns[column] = (index, written)
    for required in ("name", "role"):
        if required not in columns:
            raise _file_error(
                Message(
                    "no %(column)s column (headers: %(headers)s)",
                    column=required,
                    headers=" / ".join(h for h, c in HEADERS.items() if c == required),
                )
            )
    return columns


def _unit_lookup(units: list[Any], ref: str, grid: bool) -> int | UserError:
    """Return the id of the managed unit named (or numbered) `ref`, or why there is none."""
    candidates = [u for u in units if not grid or u.kind == "grid"]
    named = [u.id for u in candidates if u.name == ref]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        return UserError(
            "%(field)s: %(count)s units in your scope are named %(name)r; give the id",
            field="{column}",
            count=len(named),
            name=ref,
        )
    if ref.isdigit() and any(u.id == int(ref) for u in candidates):
        return int(ref)
    if grid:
        return UserError(
            "%(field)s: no grid named or numbered %(ref)r in your scope", field="{column}", ref=ref
        )
    return UserError(
        "%(field)s: no unit named or numbered %(ref)r in your scope", field="{column}", ref=ref
    )


def _for_column(error: UserError, header: str) -> UserError:
    """Return an error about a field re-worded to name the column as its header is written."""
    return UserError(error.template, **{**error.params, "field": header})


def preview(user: User, raw: bytes) -> list[RosterRow]:
    """Return what importing a roster would do, row by row, with every error; store nothing.

    Raises:
        RosterFileError: the file cannot be read as a roster at all.
    """
    table = read_table(raw)
    if not table:
        raise _file_error(Message("is empty"))
    columns = _columns(table[0])
    units = store.people.managed_units(db.session, user)
    texts: list[tuple[int, dict[str, str]]] = []
    for number, cells in enumerate(table[1:], start=2):
        values = {c: _cell(cells[i]) if i < len(cells) else "" for c, (i, _) in columns.items()}
        if any(values.values()):
            texts.append((number, values))
    phones = {normal_phone(v["phone"]) for _, v in texts if v.get("phone")}
    owners = store.people.people_by_phones(db.session, phones)
    managed_ids = set(
        db.session.execute(
            store.people.people_rows(user, store.people.PeopleFilter())
            .with_only_columns(Person.id)
            .where(Person.id.in_([p.id for p in owners.values()] or [-1]))
        ).scalars()
    )
    seen_phones: dict[str, int] = {}
    rows = []
    for number, values in texts:
        rows.append(_row(user, number, values, columns, units, owners, managed_ids, seen_phones))
    return rows


def _row(
    user: User,
    number: int,
    texts: Mapping[str, str],
    columns: Mapping[str, tuple[int, str]],
    units: list[Any],
    owners: Mapping[str, Person],
    managed_ids: set[int],
    seen_phones: dict[str, int],
) -> RosterRow:
    """Return one roster row checked, with its action and errors."""
    row = RosterRow(number)
    body: dict[str, Any] = {}
    header = {FIELDS[c]: written for c, (_, written) in columns.items()}
    for column, text in texts.items():
        name = FIELDS[column]
        if column == "role":
            body[name] = ROLE_NAMES.get(text, text)
        elif column in ("unit", "patrol_grid"):
            if not text:
                body[name] = None
                continue
            found = _unit_lookup(units, text, grid=column == "patrol_grid")
            if isinstance(found, UserError):
                row.refuse(header[name], _for_column(found, header[name]))
            else:
                body[name] = found
        else:
            body[name] = text
    values, errors = people_service.check_fields(user, body, tuple(body))
    for error in errors:
        column = header.get(error.field or "", error.field or "")
        row.refuse(column, _for_column(error, column))
    row.values = values
    phone = values.get("phone")
    key = normal_phone(phone) if phone else None
    owner = owners.get(key) if key else None
    if key and key in seen_phones:
        row.refuse(
            header["phone"],
            UserError(
                "%(field)s: %(phone)s is also on row %(row)s",
                field=header["phone"],
                phone=phone,
                row=seen_phones[key],
            ),
        )
    elif key:
        seen_phones[key] = number
    if owner is not None and owner.id not in managed_ids:
        row.refuse(
            header["phone"],
            UserError(
                "%(field)s: %(phone)s belongs to person %(person_id)s, outside your scope",
                field=header["phone"],
                phone=phone,
                person_id=owner.id,
            ),
        )
    elif owner is not None:
        row.person_id = owner.id
        if normal_phone(owner.phone or "") == key:
            values.pop("phone", None)  # the same number, perhaps written with spaces
        changes = {f: v for f, v in values.items() if getattr(owner, f) != v}
        row.action = "update" if changes else "unchanged"
        row.values = {**values, "phone": phone}
    elif "unit" not in columns and user.unit_id is not None:
        column = "单位"
        row.refuse(
            column,
            invalid(
                column,
                Message(
                    "must be a unit in your scope (your account is limited to unit %(unit_id)s)",
                    unit_id=user.unit_id,
                ),
            ),
        )
    return row


def import_roster(user: User, raw: bytes) -> tuple[bool, dict[str, Any]]:
    """Import a roster in one transaction and commit, or nothing if any row has an error.

    Returns:
        (True, {created, updated, unchanged, person_ids}) or (False, the preview's body).
    """
    store.people.lock_phones(db.session)
    rows = preview(user, raw)
    if any(r.errors for r in rows):
        db.session.rollback()
        return False, {"ok": False, "rows": [r.as_dict() for r in rows]}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    person_ids = []
    for row in rows:
        if row.action == "create":
            person_ids.append(people_service.add(row.values, phone_checked=True).id)
        else:
            target = db.session.get(Person, row.person_id)
            values = dict(row.values)
            if normal_phone(target.phone or "") == normal_phone(values.get("phone") or ""):
                values.pop("phone")
            if row.action == "update":
                people_service.change(target, values)
            person_ids.append(target.id)
        counts[{"create": "created", "update": "updated"}.get(row.action, row.action)] += 1
    db.session.commit()
    log.info("roster imported: %s", counts)
    return True, {**counts, "person_ids": person_ids}


def issue_devices(user: User, body: Any) -> list[dict[str, Any]]:
    """Issue a phone to each listed person the account manages, in one transaction; commit.

    Raises:
        AdminError: the list or the label breaks a rule (400), or a person is unknown or
            outside the scope (404).
    """
    label = device_service.check_label(body, ("person_ids", "label"))
    person_ids = body.get("person_ids") if isinstance(body, dict) else None
    if (
        not isinstance(person_ids, list)
        or not 1 <= len(person_ids) <= MAX_DEVICES
        or any(isinstance(p, bool) or not isinstance(p, int) for p in person_ids)
        or len(set(person_ids)) != len(person_ids)
    ):
        raise invalid(
            "person_ids",
            Message(
                "must be a list of 1 to %(max_count)s different person ids", max_count=MAX_DEVICES
            ),
        )
    issued = []
    for person_id in person_ids:
        person = store.people.managed_person(db.session, user, person_id)
        if person is None:
            db.session.rollback()
            raise AdminNotFound(
                "%(field)s: person %(person_id)s not found", field="person_ids", person_id=person_id
            )
        device, token = device_service.issue(person_id, label)
        url = device_service.pairing_url(token)
        issued.append(
            {
                "person_id": person_id,
                "name": person.name,
                "id": device.id,
                "token": token,
                "pairing_url": url,
                "qr_svg": device_service.qr_svg(url),
            }
        )
    db.session.commit()
    log.info("%d devices issued from a roster", len(issued))
    return issued


def export_xlsx(user: User, unit_id: int | None) -> bytes:
    """Return the people the account manages (below `unit_id`) as XLSX in the import's columns.

    Units are written by name when the name is unique in the account's scope, else by id,
    so the file imports back unchanged.
    """
    if unit_id is not None and not store.people.unit_managed(db.session, user, unit_id):
        raise AdminNotFound("unit: not found")
    units = store.people.managed_units(db.session, user)
    names: dict[str, int] = {}
    grid_names: dict[str, int] = {}
    for unit in units:
        names[unit.name] = names.get(unit.name, 0) + 1
        if unit.kind == "grid":
            grid_names[unit.name] = grid_names.get(unit.name, 0) + 1
    role_names = {role: name for name, role in ROLE_NAMES.items()}

    def unit_ref(ref_id: int | None, name: str | None, counts: dict[str, int]) -> Any:
        if ref_id is None:
            return None
        return name if counts.get(name or "") == 1 and not (name or "").isdigit() else ref_id

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("roster")
    sheet.append(list(EXPORT_HEADERS.values()))
    stmt = store.people.people_rows(user, store.people.PeopleFilter(unit_id=unit_id))
    for row in db.session.execute(stmt):
        sheet.append(
            [
                row.name,
                row.phone,
                role_names.get(row.role, row.role),
                unit_ref(row.unit_id, row.unit_name, names),
                unit_ref(row.patrol_unit_id, row.patrol_unit_name, grid_names),
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def missing_file() -> RosterFileError:
    """Return the error for a request without a roster file."""
    return _file_error(
        Message("must be a .xlsx or .csv file (multipart `file`, or JSON `file_base64`)")
    )
