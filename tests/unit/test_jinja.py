"""The Jinja2 list's helpers say what Django's template tags say."""

import pytest
from django.template import Context, Template

from dashboard.web.jinja import querystring


@pytest.mark.parametrize(
    ("mappings", "changes"),
    [
        ([{}], {}),
        ([{"status": "failed"}], {}),
        ([{"status": "failed", "operation": "add"}], {"before": 40}),
        ([{"status": "failed"}], {"status": "running"}),
        ([{"status": "failed"}], {"after": None}),
        ([{"operation": "a b&c"}], {"status": "queued"}),
    ],
)
def test_querystring_is_djangos_tag(mappings, changes):
    tag = Template("{% querystring mapping " + " ".join(f"{key}=changes.{key}" for key in changes) + " %}")
    expected = tag.render(Context({"mapping": mappings[0], "changes": changes}))
    # Django's tag escapes its & for HTML; Jinja2 escapes ours where it is written.
    assert querystring(*mappings, **changes) == expected.replace("&amp;", "&")
