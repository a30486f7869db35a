"""The sample records a new Twenty 2.21 workspace holds (5 companies, 5 people), as read from a
fresh workspace of the real server. `FakeTwenty.reset(with_sample_records=True)` adds them."""

from __future__ import annotations

from typing import Any

# (name, domain, street1, street2, city, postcode, state, country)
_COMPANIES = [
    ("Airbnb", "airbnb.com", "888 Brannan St", "", "San Francisco", "94103", "CA", "United States"),
    ("Anthropic", "anthropic.com", "548 Market Street", "", "San Francisco", "94104", "CA", "United States"),
    ("Stripe", "stripe.com", "Eutaw Street", "", "Dublin", "", "", "Ireland"),
    ("Figma", "figma.com", "760 Market St", "Floor 10", "San Francisco", "94102", "", "United States"),
    ("Notion", "notion.com", "2300 Harrison St", "", "San Francisco", "94110", "CA", "United States"),
]
# (first name, last name, email, phone, company name); calling code +1, no country code
_PEOPLE = [
    ("Brian", "Chesky", "chesky@airbnb.com", "123456789", "Airbnb"),
    ("Dario", "Amodei", "amodei@anthropic.com", "555123456", "Anthropic"),
    ("Patrick", "Collison", "collison@stripe.com", "987625341", "Stripe"),
    ("Dylan", "Field", "field@figma.com", "098822619", "Figma"),
    ("Ivan", "Zhao", "zhao@notion.com", "882261739", "Notion"),
]
AVATARS = "https://twentyhq.github.io/placeholder-images/founders"


def sample_companies() -> list[dict[str, Any]]:
    return [
        {
            "name": name, "position": position,
            "domainName": {"primaryLinkUrl": f"https://{domain}", "primaryLinkLabel": "", "secondaryLinks": []},
            "address": {"addressStreet1": street1, "addressStreet2": street2, "addressCity": city,
                        "addressPostcode": postcode, "addressState": state, "addressCountry": country,
                        "addressLat": None, "addressLng": None},
        }
        for position, (name, domain, street1, street2, city, postcode, state, country) in enumerate(_COMPANIES, 1)
    ]


def sample_people(company_ids: dict[str, str]) -> list[dict[str, Any]]:
    """The sample people, each linked to its sample company (`company_ids` by company name)."""
    return [
        {
            "name": {"firstName": first, "lastName": last}, "position": position,
            "emails": {"primaryEmail": email, "additionalEmails": []},
            "phones": {"primaryPhoneNumber": phone, "primaryPhoneCountryCode": "", "primaryPhoneCallingCode": "+1",
                       "additionalPhones": []},
            "avatarUrl": f"{AVATARS}/{first.lower()}-{last.lower()}.jpg",
            "companyId": company_ids[company],
        }
        for position, (first, last, email, phone, company) in enumerate(_PEOPLE, 1)
    ]
