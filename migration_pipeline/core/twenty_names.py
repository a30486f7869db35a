"""Twenty's rules for metadata names (fields and objects), and the one function that turns
text from a tenant's data (a data-collection field, a pivoted attribute, a label) into a name
Twenty accepts, the same way every time.

The rules are Twenty 2.21's own (twenty-server `validate-flat-field-metadata-name.util.ts`,
`validate-flat-object-metadata-name.util.ts`, `validate-flat-field-metadata-name-availability.util.ts`):
a name matches `^[a-z][a-zA-Z0-9]*$`, is 1 to 63 characters long, is not one of
`RESERVED_METADATA_NAME_KEYWORDS` (twenty-shared `reserved-metadata-name-keywords.constant.ts`)
and is not used on its object by another field or join column. The name Twenty derives from a
label (the inverse field of a relation, named from `targetFieldLabel`) follows twenty-shared
`computeMetadataNameFromLabel`: "n" before a leading digit, transliterated, lodash camelCase,
"Custom" after a reserved word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection

NAME_RULE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
MAX_NAME_LENGTH = 63  # IDENTIFIER_MAX_CHAR_LENGTH (a Postgres identifier)
SUFFIX = "Custom"  # what Twenty itself appends to a reserved name

RESERVED_NAMES = frozenset("""
    approvedAccessDomain approvedAccessDomains appToken appTokens billingCustomer billingCustomers
    billingEntitlement billingEntitlements billingMeter billingMeters billingProduct billingProducts
    billingSubscription billingSubscriptions billingSubscriptionItem billingSubscriptionItems
    featureFlag featureFlags job jobs keyValuePair keyValuePairs pageLayout pageLayouts pageLayoutTab
    pageLayoutTabs pageLayoutWidget pageLayoutWidgets twoFactorMethod twoFactorMethods user users
    userWorkspace userWorkspaces workspace workspaces role roles userWorkspaceRole userWorkspaceRoles
    plan plans event events field fields link links currency currencies fullNames address addresses
    type types object objects index relation relations aggregate search searches
""".split())

_BUILT_IN = "id createdAt updatedAt deletedAt createdBy updatedBy position searchVector"
# Fields of the standard objects a mapping writes (Twenty 2.21, read from a fresh workspace),
# join columns (`<relation>Id`) included: a new field or inverse name must avoid all of them.
STANDARD_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(f"{_BUILT_IN} {fields}".split()) for name, fields in {
        "company": "name domainName address linkedinLink annualRevenue accountOwner accountOwnerId attachments "
                   "noteTargets opportunities people taskTargets timelineActivities",
        "person": "name emails linkedinLink jobTitle phones avatarUrl avatarFile company companyId attachments "
                  "calendarEventParticipants listMemberships messageParticipants noteTargets "
                  "pointOfContactForOpportunities taskTargets timelineActivities",
        "opportunity": "name amount closeDate stage company companyId owner ownerId pointOfContact "
                       "pointOfContactId attachments noteTargets taskTargets timelineActivities",
        "note": "title bodyV2 attachments noteTargets timelineActivities",
        "task": "title bodyV2 dueAt status assignee assigneeId attachments taskTargets timelineActivities",
        "noteTarget": "note noteId targetCompany targetCompanyId targetOpportunity targetOpportunityId "
                      "targetPerson targetPersonId",
        "taskTarget": "task taskId targetCompany targetCompanyId targetOpportunity targetOpportunityId "
                      "targetPerson targetPersonId",
        "attachment": "name file fullPath fileCategory targetCompany targetCompanyId targetDashboard "
                      "targetDashboardId targetNote targetNoteId targetOpportunity targetOpportunityId "
                      "targetPerson targetPersonId targetTask targetTaskId targetWorkflow targetWorkflowId",
        "workspaceMember": "name colorScheme locale avatarUrl userEmail jobTitle calendarStartDay userId timeZone "
                           "dateFormat timeFormat numberFormat accountOwnerForCompanies assignedTasks blocklist "
                           "calendarEventParticipants messageParticipants ownedOpportunities timelineActivities",
    }.items()
}
# What Twenty gives every new custom object (examples-2.md section 5).
CUSTOM_OBJECT_FIELDS = frozenset(f"{_BUILT_IN} name attachments noteTargets taskTargets timelineActivities".split())


def standard_fields(object_name: str) -> frozenset[str]:
    """Names Twenty already uses on an object: a standard one's fields, or a custom object's built-ins."""
    return STANDARD_FIELDS.get(object_name, CUSTOM_OBJECT_FIELDS)


def name_problem(name: str) -> str | None:
    """Why Twenty would refuse `name` for a field or object, or None if it takes it."""
    if not NAME_RULE.match(name):
        return "is not a camelCase name (a lower-case letter first, then only letters and digits)"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than Twenty's {MAX_NAME_LENGTH} characters"
    if name in RESERVED_NAMES:
        return f"is reserved by Twenty (RESERVED_METADATA_NAME_KEYWORDS); use another, e.g. {name + SUFFIX!r}"
    return None


# lodash `words` for ASCII text: runs of capitals before a capitalised word, capitalised or
# lower-case words, ordinals, numbers.
_WORD = re.compile(
    r"[A-Z]+(?=[A-Z][a-z])|\d*(?:1ST|2ND|3RD|(?![123])\dTH)(?=\b|[a-z_])"
    r"|\d*(?:1st|2nd|3rd|(?![123])\dth)(?=\b|[A-Z_])|[A-Z]?[a-z]+|[A-Z]+|\d+"
)


def _camel(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = [w.lower() for chunk in re.findall(r"[A-Za-z0-9]+", ascii_text) for w in _WORD.findall(chunk)]
    return "".join(w if i == 0 else w[:1].upper() + w[1:] for i, w in enumerate(words))


def name_from_label(label: str) -> str:
    """The name Twenty gives a field it names from a label (a relation's inverse field):
    "Matter participants" -> "matterParticipants", "Type" -> "typeCustom"."""
    name = _camel(f"n{label}" if label[:1].isdigit() else label)
    return name + SUFFIX if name in RESERVED_NAMES else name


def tenant_name(text: str, taken: Collection[str] = ()) -> str:
    """A name Twenty accepts for a field made from tenant data, the same for the same text and
    `taken` every time: camelCase of the text's ASCII letters and digits ("n" before a leading
    digit, "unnamedField" for text without any), cut to 63 characters with a short hash of the whole
    when longer, then "Custom" (then "Custom2", "Custom3" ...) appended while the name is
    reserved or in `taken` (names already used on its object)."""
    base = _camel(f"n{text}" if text.strip()[:1].isdigit() else text) or "unnamedField"
    if len(base) > MAX_NAME_LENGTH:
        digest = hashlib.sha1(base.encode()).hexdigest()[:7]
        base = base[: MAX_NAME_LENGTH - len(digest)] + digest
    name, attempt = base, 1
    while name in RESERVED_NAMES or name in taken:
        suffix = SUFFIX + (str(attempt) if attempt > 1 else "")
        name, attempt = base[: MAX_NAME_LENGTH - len(suffix)] + suffix, attempt + 1
    return name


def inverse_label(label: str, taken: Collection[str]) -> str:
    """A relation's `targetFieldLabel` whose name (`name_from_label`) is not in `taken` (the
    target object's field names): the label, else with " Custom", " Custom2" ... after it.
    Twenty refuses a clash with 400 NOT_AVAILABLE and never suffixes it itself."""
    candidate, attempt = label, 1
    while name_from_label(candidate) in taken:
        candidate, attempt = f"{label} {SUFFIX}{attempt if attempt > 1 else ''}", attempt + 1
    return candidate
