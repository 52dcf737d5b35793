"""Reading what a sign-in service says about a person: names, e-mail, and the school's rules
(who is a teacher, who is admitted). Pure functions over the claims dictionary."""

from __future__ import annotations

from collections.abc import Iterable

FIRST_NAME_CLAIMS = ("given_name", "givenName", "prenom", "first_name", "firstName")
LAST_NAME_CLAIMS = ("family_name", "usual_name", "sn", "nom", "last_name", "lastName")
EMAIL_CLAIMS = ("email", "mail")


def values_of(claims: dict, name: str) -> list[str]:
    """A claim as a list of strings (services send one value or a list; CAS sends lists)."""
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    text = str(value).strip()
    return [text] if text else []


def first_value(claims: dict, names: Iterable[str]) -> str:
    for name in names:
        found = values_of(claims, name)
        if found:
            return found[0]
    return ""


def split_rule_values(text: str) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def claim_matches(claims: dict, claim: str, allowed: str) -> bool:
    """True when the claim has one of the allowed values (case-insensitive); `*` allows any value.

    An empty rule matches nothing: a school that configured no rule promotes nobody.
    """
    claim = (claim or "").strip()
    wanted = split_rule_values(allowed)
    if not claim or not wanted:
        return False
    have = values_of(claims, claim)
    if "*" in wanted:
        return bool(have)
    wanted_folded = {w.casefold() for w in wanted}
    return any(v.casefold() in wanted_folded for v in have)


def person_names(claims: dict) -> tuple[str, str]:
    """(first name, last name), from whichever standard claims the service sends."""
    first = first_value(claims, FIRST_NAME_CLAIMS)
    last = first_value(claims, LAST_NAME_CLAIMS)
    if not (first or last):
        full = first_value(claims, ("name", "displayName", "cn"))
        if full:
            first, _sep, last = full.partition(" ")
    return first[:150], last[:150]


def person_email(claims: dict) -> str:
    email = first_value(claims, EMAIL_CLAIMS)
    if claims.get("email_verified") is False:
        return ""  # the provider says it did not check it: never store it as theirs
    return email[:254] if "@" in email else ""
