"""The safety rules' settings in force at this site: the code's defaults
(:mod:`speciosa.safety.settings`, declared with the rule registry), then any
``SPECIOSA_SAFETY_SETTINGS`` overrides of the deployment (JSON object), then the values an
administrator stored in the database (:class:`~speciosa.clinic.models.RuleSetting`).

An administrator changes a value on the Speciosa settings page (``/safety-settings/``),
which shows the old and new values and asks for a reason; :func:`change` stores it with an
audit entry (``setting-change``, old and new value, reason) through the write kernel.
Clinicians read the same page without the form. A change applies from the next evaluation
(the next sweep, or the next change to a patient's data).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS, Setting, resolve_settings

from . import access, writes
from .models import Role, RuleSetting

__all__ = ["SettingInForce", "change", "check", "in_force", "overrides", "parse_value",
           "table"]


def _env_overrides() -> dict[str, float | int]:
    raw = os.environ.get("SPECIOSA_SAFETY_SETTINGS", "").strip()
    return json.loads(raw) if raw else {}


def _typed(name: str, value: float) -> float | int:
    """A stored value with its default's type (days stay whole numbers)."""
    whole = isinstance(DEFAULT_SETTINGS[name], int) and float(value).is_integer()
    return int(value) if whole else value


def overrides() -> dict[str, float | int]:
    """The values that differ from the code's defaults here (deployment, then database):
    what :func:`speciosa.safety.evaluate` is given. A stored name the code no longer knows
    is left out."""
    out = dict(_env_overrides())
    for name, value in RuleSetting.objects.values_list("name", "value"):
        if name in DEFAULT_SETTINGS:
            out[name] = _typed(name, value)
    return out


def in_force() -> dict[str, float | int]:
    """Every setting with the value in force."""
    return dict(resolve_settings(overrides()))


@dataclass(frozen=True)
class SettingInForce:
    """One row of the settings page."""

    setting: Setting
    value: float | int
    origin: str  # "default", "deployment" or "site"
    row: RuleSetting | None

    @property
    def default(self) -> float | int:
        return self.setting.default

    @property
    def is_convention(self) -> bool:
        """A default that is Speciosa's or a site's convention, not a published cut-off."""
        text = self.setting.source.lower()
        return "design default" in text or "convention" in text


def table() -> list[SettingInForce]:
    """Every setting, its default, the value in force and where that value comes from."""
    env = _env_overrides()
    rows = {r.name: r for r in RuleSetting.objects.select_related("changed_by")}
    out = []
    for s in SETTINGS:
        if s.name in rows:
            out.append(SettingInForce(s, _typed(s.name, rows[s.name].value), "site", rows[s.name]))
        elif s.name in env:
            out.append(SettingInForce(s, env[s.name], "deployment", None))
        else:
            out.append(SettingInForce(s, s.default, "default", None))
    return out


def parse_value(name: str, raw) -> float | int:
    """The new value of setting ``name`` from a form or the command line.

    Raises
    ------
    ValidationError
        Under ``value``: not a number, not positive, or not whole for a setting counted in
        whole units (days, points).
    """
    try:
        value = float(str(raw).strip().replace(",", "."))
    except ValueError:
        raise ValidationError({"value": "Enter a number, e.g. 14 or 0.5."}) from None
    if not math.isfinite(value) or value <= 0:
        raise ValidationError({"value": "Enter a number above 0."})
    if isinstance(DEFAULT_SETTINGS[name], int):
        if not value.is_integer():
            raise ValidationError({"value": f"{name} is counted in whole {_unit(name)}: "
                                            "enter a whole number."})
        return int(value)
    return value


def _unit(name: str) -> str:
    return next(s.unit for s in SETTINGS if s.name == name)


def check(name: str, raw_value, reason: str) -> float | int:
    """The new value of ``name`` if a change to it with this ``reason`` would be accepted.

    Raises
    ------
    ValidationError
        An unknown setting, a bad value (see :func:`parse_value`), no reason, or the value
        already in force.
    """
    if name not in DEFAULT_SETTINGS:
        raise ValidationError({"name": f"There is no setting called {name!r}."})
    errors = {}
    if not (reason or "").strip():
        errors["reason"] = "Say why the setting is changed (it is kept in the audit trail)."
    value = None
    try:
        value = parse_value(name, raw_value)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    old = in_force()[name]
    if value is not None and value == old:
        errors["value"] = f"{name} is already {old:g}: enter a different value."
    if errors:
        raise ValidationError(errors)
    return value


def change(user, name: str, raw_value, reason: str) -> RuleSetting:
    """Store a new value of one setting (administrators only), audited with the old value,
    the new value and the reason.

    Raises
    ------
    AccessDenied
        The user is not an administrator.
    ValidationError
        As :func:`check`.
    """
    writes.require(access.has_role(user, Role.ADMIN),
                   "Only an administrator changes the safety rules' settings.")
    value = check(name, raw_value, reason)
    reason = reason.strip()
    with transaction.atomic():
        row = RuleSetting.objects.select_for_update().filter(name=name).first()
        old = in_force()[name]
        origin = "site" if row else ("deployment" if name in _env_overrides() else "default")
        before = {"name": name, "value": old, "origin": origin}
        if row is None:
            row = RuleSetting(name=name)
        row.value, row.changed_by, row.reason = value, user, reason[:500]
        row.changed_at = timezone.now()
        row.save()
        writes.audit(user, writes.Action.SETTING_CHANGE, row, before=before,
                     after={"name": name, "value": value, "origin": "site"}, reason=reason)
    return row
