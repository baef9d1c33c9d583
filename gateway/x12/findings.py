"""Problems found in X12 data, as values with stable codes.

A :class:`Finding` is what the reader and the validator collect instead of
raising, so that one bad segment or set never hides the next. Each code
maps to the acknowledgment code that reports it (TA1 note code, AK905/IK
group error, AK502/IK502 set error, AK304/IK304 segment error or AK403/IK403
element error) through :data:`RULES`; the ack builder reads that table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from gateway.errors import Location


class Severity(StrEnum):
    """An error rejects the set (or interchange); a warning is reported only."""

    ERROR = "error"
    WARNING = "warning"


class Level(StrEnum):
    """Which envelope level a finding is acknowledged at."""

    INTERCHANGE = "interchange"  # TA1
    GROUP = "group"  # AK9 / AK905
    SET = "set"  # AK5 / AK502
    SEGMENT = "segment"  # AK3 / IK3
    ELEMENT = "element"  # AK4 / IK4


@dataclass(frozen=True, slots=True)
class Rule:
    """What a finding code means and how each acknowledgment reports it.

    ``ack`` is the X12 code for the 997; ``ack999`` overrides it for the 999
    where 005010 has an implementation-specific code (I-codes).
    """

    level: Level
    title: str
    ack: str | None
    ack999: str | None = None


RULES: dict[str, Rule] = {
    # --- reading and the interchange envelope (TA1 note codes, I18) ---
    "X12-R001": Rule(Level.INTERCHANGE, "not X12: no ISA segment where one must start", "022"),
    "X12-R002": Rule(Level.INTERCHANGE, "ISA field has the wrong width (ISA is fixed width)", None),
    "X12-R003": Rule(Level.INTERCHANGE, "invalid segment terminator", "004"),
    "X12-R004": Rule(Level.INTERCHANGE, "invalid data element separator", "026"),
    "X12-R005": Rule(Level.INTERCHANGE, "invalid component element separator", "027"),
    "X12-R006": Rule(Level.INTERCHANGE, "data outside any interchange", "024"),
    "X12-R007": Rule(Level.INTERCHANGE, "file ends inside an interchange (no IEA)", "023"),
    "X12-R008": Rule(Level.INTERCHANGE, "segment not valid at this place in the envelope", "024"),
    "X12-R009": Rule(Level.INTERCHANGE, "empty input", "023"),
    "X12-I001": Rule(Level.INTERCHANGE, "IEA02 does not match ISA13", "001"),
    "X12-I002": Rule(Level.INTERCHANGE, "IEA01 does not match the number of groups", "021"),
    "X12-I003": Rule(Level.INTERCHANGE, "interchange version (ISA12) not supported", "017"),
    "X12-I004": Rule(Level.INTERCHANGE, "ISA13 control number is not 9 digits", "018"),
    "X12-I005": Rule(Level.INTERCHANGE, "ISA14 acknowledgment requested is not 0 or 1", "019"),
    "X12-I006": Rule(Level.INTERCHANGE, "ISA15 usage indicator is not P, T or I", "020"),
    "X12-I007": Rule(Level.INTERCHANGE, "ISA09 is not a valid date", "014"),
    "X12-I008": Rule(Level.INTERCHANGE, "ISA10 is not a valid time", "015"),
    "X12-I009": Rule(Level.INTERCHANGE, "ISA11 is not valid for this version", "016"),
    "X12-I010": Rule(Level.INTERCHANGE, "ISA sender id or qualifier invalid", "006"),
    "X12-I011": Rule(Level.INTERCHANGE, "ISA receiver id or qualifier invalid", "008"),
    # a warning: the runtime's ISA13 dedupe decides what a repeat means (TA1 note 025 when one is sent)
    "X12-I012": Rule(Level.INTERCHANGE, "ISA13 repeated within the file by the same sender", "025"),
    # --- functional group (AK905 / 999 AK905) ---
    "X12-G001": Rule(Level.GROUP, "functional group trailer (GE) missing", "3"),
    "X12-G002": Rule(Level.GROUP, "GE02 does not match GS06", "4"),
    "X12-G003": Rule(Level.GROUP, "GE01 does not match the number of transaction sets", "5"),
    "X12-G004": Rule(Level.GROUP, "functional group version (GS08) not supported", "2"),
    "X12-G005": Rule(Level.GROUP, "functional identifier (GS01) not supported", "1"),
    "X12-G006": Rule(Level.GROUP, "group control number (GS06) violates syntax", "6"),
    "X12-G007": Rule(Level.GROUP, "group control number not unique within interchange", "19"),
    # --- transaction set (AK502 / IK502) ---
    "X12-S001": Rule(Level.SET, "transaction set trailer (SE) missing", "2"),
    "X12-S002": Rule(Level.SET, "SE02 does not match ST02", "3"),
    "X12-S003": Rule(Level.SET, "SE01 does not match the number of segments", "4"),
    "X12-S004": Rule(Level.SET, "transaction set not supported", "1"),
    "X12-S005": Rule(Level.SET, "missing or invalid transaction set identifier (ST01)", "6"),
    "X12-S006": Rule(Level.SET, "missing or invalid transaction set control number (ST02)", "7"),
    "X12-S007": Rule(Level.SET, "transaction set does not belong in this functional group", "18"),
    "X12-S008": Rule(Level.SET, "transaction set control number not unique in group", "23"),
    # --- segments (AK304 / IK304) ---
    "X12-V101": Rule(Level.SEGMENT, "unrecognized segment id", "1"),
    "X12-V102": Rule(Level.SEGMENT, "unexpected segment", "2"),
    "X12-V103": Rule(Level.SEGMENT, "mandatory segment missing", "3"),
    "X12-V104": Rule(Level.SEGMENT, "loop occurs over maximum times", "4"),
    "X12-V105": Rule(Level.SEGMENT, "segment exceeds maximum use", "5"),
    "X12-V106": Rule(Level.SEGMENT, "segment not in defined transaction set", "6"),
    "X12-V107": Rule(Level.SEGMENT, "segment not in proper sequence", "7"),
    "X12-V108": Rule(Level.SEGMENT, "HL hierarchy is broken", "8"),
    "X12-V110": Rule(Level.SEGMENT, "segment required by the partner's guide missing", "3", "I6"),
    "X12-V111": Rule(Level.SEGMENT, "segment the partner's guide never uses is present", "2", "I4"),
    # --- elements (AK403 / IK403) ---
    "X12-V201": Rule(Level.ELEMENT, "mandatory data element missing", "1"),
    "X12-V202": Rule(Level.ELEMENT, "conditional required data element missing", "2"),
    "X12-V203": Rule(Level.ELEMENT, "too many data elements", "3"),
    "X12-V204": Rule(Level.ELEMENT, "data element too short", "4"),
    "X12-V205": Rule(Level.ELEMENT, "data element too long", "5"),
    "X12-V206": Rule(Level.ELEMENT, "invalid character in data element", "6"),
    "X12-V207": Rule(Level.ELEMENT, "invalid code value", "7"),
    "X12-V208": Rule(Level.ELEMENT, "invalid date", "8"),
    "X12-V209": Rule(Level.ELEMENT, "invalid time", "9"),
    "X12-V210": Rule(Level.ELEMENT, "exclusion condition violated", "10"),
    "X12-V212": Rule(Level.ELEMENT, "too many repetitions", "12"),
    "X12-V213": Rule(Level.ELEMENT, "too many components", "13"),
    "X12-V214": Rule(Level.ELEMENT, "code value not in the usual list", None),
    "X12-V220": Rule(Level.ELEMENT, "data element the partner's guide never uses is present", "3", "I10"),
    "X12-V221": Rule(Level.ELEMENT, "data element required by the partner's guide missing", "1", "I9"),
    "X12-V222": Rule(Level.ELEMENT, "code value not used by the partner's guide", "7", "I6"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, located. ``element_ref`` is the data element number (AK402)."""

    code: str
    message: str
    location: Location = field(default_factory=Location)
    severity: Severity = Severity.ERROR
    value: str | None = None
    element_ref: str | None = None
    ack_code: str | None = None  # overrides the rule's code (e.g. per ISA field)
    waived: str | None = None  # why a partner's profile accepts this error (it is then a warning)

    @property
    def rule(self) -> Rule:
        """The :class:`Rule` for this finding's code."""
        return RULES[self.code]

    @property
    def is_error(self) -> bool:
        """True when this finding rejects what it is found in."""
        return self.severity is Severity.ERROR

    def waive(self, why: str) -> Finding:
        """This error accepted as a warning (``why``: the profile entry that accepts it)."""
        return replace(self, severity=Severity.WARNING, waived=why)

    def __str__(self) -> str:
        text = f"[{self.code}] {self.location.describe()}: {self.message}"
        if self.value is not None:
            text += f" (value {self.value!r})"
        if self.waived is not None:
            text += f" (accepted: {self.waived})"
        return text
