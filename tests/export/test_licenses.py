from __future__ import annotations

import pytest

from curate.errors import ConfigError
from curate.export.licenses import LICENSES, parse_overrides, summarize


def test_known_formats_map_to_their_licences_and_citations() -> None:
    expected = {"oig": "apache-2.0", "stackexchange": "cc-by-sa-4.0", "p3": "apache-2.0", "sharegpt": "other",
                "alpaca": "cc-by-nc-4.0", "dolly": "cc-by-sa-3.0", "oasst": "apache-2.0", "gpt4all": "apache-2.0"}
    assert {k: v.license for k, v in LICENSES.items()} == expected
    for fmt in ("gpt4all", "alpaca", "sharegpt", "oig", "p3", "oasst", "dolly"):
        bib = LICENSES[fmt].citation
        assert bib and bib.startswith("@") and bib.count("{") == bib.count("}"), fmt
    assert "generat" in (LICENSES["gpt4all"].note or "")


def test_several_licences_give_a_list_and_the_most_restrictive() -> None:
    s = summarize([{"id": "a", "format": "oig"}, {"id": "b", "format": "alpaca"}, {"id": "c", "format": "dolly"}])
    assert s.card_value == ["apache-2.0", "cc-by-sa-3.0", "cc-by-nc-4.0"]
    assert s.most_restrictive == "cc-by-nc-4.0"
    assert any("most restrictive" in w for w in s.warnings)
    single = summarize([{"id": "a", "format": "oig"}, {"id": "b", "format": "p3"}])
    assert single.card_value == "apache-2.0" and single.warnings == []


def test_unknown_format_is_other_with_a_warning_and_override_fixes_it() -> None:
    s = summarize([{"id": "mine", "format": "openai"}])
    assert s.card_value == "other"
    assert "--license mine=" in s.warnings[0]
    fixed = summarize([{"id": "mine", "format": "openai"}], {"mine": "MIT"})
    assert fixed.card_value == "mit" and fixed.warnings == [] and fixed.per_source[0].overridden


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="unknown source"):
        summarize([{"id": "a", "format": "oig"}], {"b": "mit"})
    with pytest.raises(ConfigError, match="Hub licence id"):
        summarize([{"id": "a", "format": "oig"}], {"a": "MIT licence!"})
    with pytest.raises(ConfigError, match="SOURCE=LICENSE_ID"):
        parse_overrides(["apache-2.0"])
    assert parse_overrides(["a=mit", " b = apache-2.0 "]) == {"a": "mit", "b": "apache-2.0"}
