"""Mirror rules: parsing SIIBRAD_MIRRORS and the mirrors file, and which places a URL tries."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from siibrad.errors import ConfigurationError
from siibrad.settings import Settings
from siibrad.store import archive, cache, configuration, download, mirrors, retry
from siibrad.store.mirrors import candidates, load_mirrors, parse_mirrors


@pytest.mark.parametrize("module", [mirrors, retry, download, cache, archive, configuration])
def test_store_doctests_pass(module: object) -> None:
    """The doctested examples in the store modules hold."""
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0


def test_parse_pairs_to_urls_and_directories(tmp_path: Path) -> None:
    """PREFIX=TARGET pairs become URL mirrors or local-directory mirrors."""
    rules = parse_mirrors(
        f"https://data-proxy.ebrains.eu=http://127.0.0.1:8080/dp/ , https://x.org={tmp_path}"
    )
    assert rules[0].prefix == "https://data-proxy.ebrains.eu"
    assert rules[0].target == "http://127.0.0.1:8080/dp"
    assert rules[0].directory is None
    assert rules[1].directory == tmp_path


def test_file_url_target_is_a_directory(tmp_path: Path) -> None:
    """A file:// target is a local directory."""
    (rule,) = parse_mirrors(f"https://x.org=file://{tmp_path}")
    assert rule.directory == tmp_path


def test_bad_item_names_the_setting() -> None:
    """An item without '=' raises ConfigurationError naming the setting and the item."""
    with pytest.raises(ConfigurationError) as err:
        parse_mirrors("https://x.org")
    assert err.value.data["setting"] == "SIIBRAD_MIRRORS"
    assert "https://x.org" in err.value.message


def test_mirrors_file_lines_and_comments_follow_the_setting(tmp_path: Path) -> None:
    """The mirrors file (one rule per line, # comments) comes after SIIBRAD_MIRRORS."""
    listing = tmp_path / "mirrors.txt"
    listing.write_text(
        "# institute proxy\nhttps://a.org=http://proxy:1/a  # trailing comment\n\n"
        f"https://b.org={tmp_path}\n"
    )
    settings = Settings(mirrors="https://c.org=http://proxy:1/c", mirrors_file=listing)
    assert [m.prefix for m in load_mirrors(settings)] == [
        "https://c.org",
        "https://a.org",
        "https://b.org",
    ]


def test_unreadable_mirrors_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A missing mirrors file raises ConfigurationError naming SIIBRAD_MIRRORS_FILE."""
    with pytest.raises(ConfigurationError) as err:
        load_mirrors(Settings(mirrors_file=tmp_path / "absent.txt"))
    assert err.value.data["setting"] == "SIIBRAD_MIRRORS_FILE"


def test_candidates_put_longest_prefix_first_and_origin_last() -> None:
    """Mirrors are tried longest prefix first, the origin last, the remainder kept verbatim."""
    rules = parse_mirrors(
        "https://h.org=http://m1/all,https://h.org/api/v1=http://m2/api,https://other.org=http://m3"
    )
    found = candidates("https://h.org/api/v1/x.nii.gz?a=1", rules)
    assert [c.url for c in found] == [
        "http://m2/api/x.nii.gz?a=1",
        "http://m1/all/api/v1/x.nii.gz?a=1",
        "https://h.org/api/v1/x.nii.gz?a=1",
    ]
    assert found[-1].via == "origin"


def test_prefix_matches_only_at_a_boundary() -> None:
    """https://h.org does not capture https://h.org.evil.net."""
    rules = parse_mirrors("https://h.org=http://m1")
    assert [c.via for c in candidates("https://h.org.evil.net/x", rules)] == ["origin"]


def test_local_directory_candidates_refuse_escapes(tmp_path: Path) -> None:
    """A directory mirror maps the URL path below it and ignores paths that climb out."""
    rules = parse_mirrors(f"https://h.org={tmp_path}")
    inside = candidates("https://h.org/a/b%20c.json", rules)
    assert inside[0].path == tmp_path / "a" / "b c.json"
    climbing = candidates("https://h.org/a/../../etc/passwd", rules)
    assert [c.via for c in climbing] == ["origin"]


def test_credentials_in_a_mirror_url_are_not_shown(tmp_path: Path) -> None:
    """The 'via' label of a mirror hides user:password."""
    rules = parse_mirrors("https://h.org=http://me:secret@proxy:3128/h")
    (first, _origin) = candidates("https://h.org/x", rules)
    assert "secret" not in first.via
    assert first.url == "http://me:secret@proxy:3128/h/x"


def test_whole_url_rule_names_a_local_file(tmp_path: Path) -> None:
    """A rule whose prefix is the full URL maps it to one local file, tried before the origin."""
    copy = tmp_path / "copy.nii.gz"
    copy.write_bytes(b"x")
    url = "https://data-proxy.ebrains.eu/api/v1/buckets/b/area_l.nii.gz"
    found = candidates(url, parse_mirrors(f"{url}={copy}"))
    assert [c.path for c in found] == [copy, None]
    assert found[-1].url == url
