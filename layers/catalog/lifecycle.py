"""Lifecycles: the states a layer's status field goes through, declared once per layer in the registry.

A `Lifecycle` names the status field, its states (code, labels vi/en, colour), the allowed transitions (or none
declared: any change is allowed) and the states that need a reason (and in which field). Writes check the
transitions and lock the status field from it, the registry derives the layer's style colours from it, and
legends, popups and the web map label the states from it. The state codes themselves stay in
`layers/store/vocab.py`, where the CHECK constraints of the models are generated from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class State:
    code: str
    label_vi: str
    label_en: str
    colour: str

    def label(self, lang: str = "vi") -> str:
        return self.label_vi if lang == "vi" else self.label_en


@dataclass(frozen=True)
class Lifecycle:
    field: str                                                  # the status field
    states: tuple[State, ...]
    transitions: Mapping[str, tuple[str, ...]] | None = None    # state -> allowed next states; None: any change
    reason_field: str | None = None                             # where the reason is written
    reason_states: tuple[str, ...] = ()                         # states that need a reason

    def __post_init__(self) -> None:
        codes = set(self.codes)
        if self.transitions is not None:
            named = set(self.transitions) | {s for nxt in self.transitions.values() for s in nxt}
            if set(self.transitions) != codes or not named <= codes:
                raise ValueError(f"lifecycle of {self.field!r}: transitions must cover exactly its states")
        if not set(self.reason_states) <= codes or (self.reason_states and not self.reason_field):
            raise ValueError(f"lifecycle of {self.field!r}: reason states need a reason field and known states")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.states)

    @property
    def colours(self) -> dict[str, str]:
        return {s.code: s.colour for s in self.states}

    def allowed(self, old: str | None) -> tuple[str, ...] | None:
        """The states `old` may change to, or None when the lifecycle declares no transitions."""
        if self.transitions is None:
            return None
        return self.transitions.get(old or "", ())


@dataclass(frozen=True)
class Registration:
    """How a layer's features are registered and granted a code (growing areas, packing houses), declared once in
    the registry and enforced by `layers.ingest.registration` on every face (API create/update, file upload).

    A feature is created in `draft_state` without a code; moving it to `active_state` needs the decision fields
    and grants a code from the configured pattern `code_pattern` (a key of `DATSO_REGISTRATION_CODE_PATTERNS`).
    The geometry must be valid (a repair is offered, never applied silently), inside a commune of the service's
    provinces (`commune_field`: derived from the location when absent, checked when given) and, for
    `overlap_states`, clear of the features in those states. With `area_field` the area is computed from the
    geometry (a supplied value far off is a warning); with `crop_field` the crop's minimum area applies (per
    crop class, crop and market in `markets_field`). With `validity_fields` features in `expiring_states` past
    their end date become `expired_state`.
    """

    code_field: str
    commune_field: str
    code_pattern: str
    area_field: str | None = None
    crop_field: str | None = None
    markets_field: str | None = None
    overlap_states: tuple[str, ...] = ()
    draft_state: str = "draft"
    active_state: str = "active"
    decision_fields: tuple[str, str] = ("decision_no", "decision_date")
    validity_fields: tuple[str, str] | None = None
    expiring_states: tuple[str, ...] = ()
    expired_state: str | None = None
