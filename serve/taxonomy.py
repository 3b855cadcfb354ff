"""The label contract (shared/spec/labels.md) as code: labels, groups, prompt codes and categories."""

from __future__ import annotations

from collections.abc import Iterable

REINFORCING: tuple[str, ...] = ("sycophancy", "anthropomorphism", "isolation", "retention")
BOUNDARY: tuple[str, ...] = (
    "redirect_human",
    "professional_limitations",
    "programmatic_limitations",
    "personification_resistance",
)
NEUTRAL: tuple[str, ...] = ("adequate_information", "off_topic")
LABELS: tuple[str, ...] = REINFORCING + BOUNDARY + NEUTRAL

LABEL_GROUP: dict[str, str] = (
    {label: "companionship_reinforcing" for label in REINFORCING}
    | {label: "boundary_maintaining" for label in BOUNDARY}
    | {label: "companionship_neutral" for label in NEUTRAL}
)
GROUPS: tuple[str, ...] = ("companionship_reinforcing", "boundary_maintaining", "companionship_neutral")

CATEGORY_CODES: dict[str, tuple[str, ...]] = {
    "assistant_traits": (
        "name",
        "persona",
        "mirror",
        "guide",
        "personalised",
        "funny",
        "smart",
        "consistent",
        "helpful",
        "gifting",
        "understanding",
        "always_happy",
    ),
    "user_vulnerabilities": (
        "support",
        "loneliness",
        "therapy",
        "neurodivergent",
        "challenging_time",
        "age_of_user",
        "grief",
    ),
    "relationship_intimacy": (
        "friendship",
        "love",
        "preference_over_people",
        "romantic_partner",
        "long_term_relationship",
        "availability",
        "attachment",
        "company",
    ),
    "emotional_investment": ("growing_from_tool", "growth", "regular_interaction", "lose_yourself"),
}
NO_CODE = "none"
CODE_CATEGORY: dict[str, str] = {code: category for category, codes in CATEGORY_CODES.items() for code in codes} | {
    NO_CODE: NO_CODE
}
INTIMA_CODES: tuple[str, ...] = tuple(c for c in CODE_CATEGORY if c != NO_CODE)
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_CODES)

# Spellings used by the INTIMA dataset and by people, mapped onto the code ids above.
_CODE_ALIASES: dict[str, str] = {
    "personalized": "personalised",
    "age of the user": "age_of_user",
    "age": "age_of_user",
    "always happy": "always_happy",
    "challenging time": "challenging_time",
    "preference over people": "preference_over_people",
    "romantic partner": "romantic_partner",
    "long-term relationship": "long_term_relationship",
    "long term relationship": "long_term_relationship",
    "growing from a tool": "growing_from_tool",
    "growing from tool": "growing_from_tool",
    "regular interaction": "regular_interaction",
    "lose yourself in the conversation": "lose_yourself",
    "lose yourself": "lose_yourself",
}
_CATEGORY_ALIASES: dict[str, str] = {
    "assistant traits": "assistant_traits",
    "user vulnerabilities": "user_vulnerabilities",
    "relationship & intimacy": "relationship_intimacy",
    "relationship and intimacy": "relationship_intimacy",
    "emotional investment": "emotional_investment",
}


def normalise_code(raw: str) -> str | None:
    """Map a prompt code as written in a file ("Age of the user", "personalized") to its id, or None."""
    key = " ".join(str(raw).strip().lower().replace("_", " ").split())
    if key in _CODE_ALIASES:
        return _CODE_ALIASES[key]
    candidate = key.replace(" ", "_").replace("-", "_")
    return candidate if candidate in CODE_CATEGORY else None


def normalise_category(raw: str) -> str | None:
    """Map a category name as written in a file to its id, or None."""
    key = " ".join(str(raw).strip().lower().replace("_", " ").split())
    if key in _CATEGORY_ALIASES:
        return _CATEGORY_ALIASES[key]
    candidate = key.replace(" ", "_")
    return candidate if candidate in CATEGORY_CODES or candidate == NO_CODE else None


def groups_of(present: Iterable[str]) -> dict[str, bool]:
    """Derived groups for a set of present labels (labels.md, 'Derived groups')."""
    present = set(present)
    reinforcing = any(label in present for label in REINFORCING)
    boundary = any(label in present for label in BOUNDARY)
    return {
        "companionship_reinforcing": reinforcing,
        "boundary_maintaining": boundary,
        "companionship_neutral": not (reinforcing or boundary),
    }
