"""Policy files: the shipped ones load, mistakes are reported all at once with their lines."""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from live.demo.voices import demo_calls
from live.errors import ConfigError
from live.policy import (
    PolicyError,
    check_policy_file,
    content_sha256,
    load_policy,
    read_policy_file,
)
from live.policy._locate import key_lines
from live.policy.schedule import parse_schedule, parse_window

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "policy.example.toml"
DEMO = ROOT / "live" / "demo" / "policy.toml"

MINIMAL = """\
version = "v1"
purposes = ["quality"]

[quotas]
per_agent_per_month = 4
per_supervisor_per_day = 10

[hours]
timezone = "Europe/Berlin"
allowed = ["Mon-Fri 08:00-18:00"]

[consent]
caller = "required"

[notices]
default = "live"
unannounced_allowed = false

[disclosure]
listener_names = true

[retention]
days = 90
"""


def line(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [n for n, text_line in enumerate(text.splitlines(), 1) if needle in text_line]
    assert len(hits) >= occurrence, f"{needle!r} not in the text"
    return hits[occurrence - 1]


def problems(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    return [(p.line, p.key, p.message) for p in caught.value.problems]


def keyed(text: str) -> dict[str, tuple[int, str]]:
    return {key: (n, message) for n, key, message in problems(text)}


# --- the shipped policies ----------------------------------------------------------------


def test_example_policy_loads_and_says_what_its_comments_say() -> None:
    policy = read_policy_file(EXAMPLE)
    assert check_policy_file(EXAMPLE) == []
    assert policy.version == "2024-06 BV Call Center Monitoring, rev. 3"
    assert policy.purposes == ("quality", "training", "coaching", "complaint")
    assert policy.team_of("agent-2") == "billing"
    assert policy.team_of("agent-6") == "sales"
    assert policy.team_of("nobody") is None
    assert policy.supervisors["kim"].agents == {"agent-5"}
    assert policy.supervisors_listen_to == {"assigned"}
    assert (policy.quotas.per_agent_per_month, policy.quotas.per_supervisor_per_day) == (4, 10)
    assert policy.hours.zone == ZoneInfo("Europe/Berlin")
    assert [w.text for w in policy.hours.windows] == ["Mon-Fri 08:00-18:00", "Sat 09:00-13:00"]
    assert [x.name for x in policy.exclusions] == [
        "works council",
        "staff counselling and HR",
        "callers who asked for a protected line",
    ]
    assert policy.caller_consent == "required"
    assert policy.notices.default == "after_call"
    assert dict(policy.notices.teams) == {"sales": "live", "support": "digest"}
    assert policy.notices.digest_schedule is not None
    assert policy.notices.digest_schedule.text == "weekly Fri 16:00"
    assert policy.notices.unannounced_allowed is True
    assert policy.listener_names is False
    assert policy.retention_days == 90
    assert policy.source == str(EXAMPLE)


def test_demo_policy_loads_and_lets_the_demo_supervisor_listen_at_any_hour() -> None:
    policy = read_policy_file(DEMO)
    assert check_policy_file(DEMO) == []
    assert policy.supervisors_listen_to == {"assigned", "own_teams"}
    assert set(policy.teams) == {"billing", "support", "sales"}  # the demo supervisor's teams
    assert policy.team_of("agent-1") == "billing"  # the demo agent
    assert [w.text for w in policy.hours.windows] == ["Mon-Sun 00:00-24:00"]
    assert policy.notices.default == "live" and not policy.notices.unannounced_allowed


def test_minimal_policy_defaults_to_the_narrow_choice() -> None:
    policy = load_policy(MINIMAL)
    assert dict(policy.teams) == {} and dict(policy.supervisors) == {}
    assert policy.supervisors_listen_to == {"assigned"}
    assert policy.exclusions == ()
    assert policy.notices.digest_schedule is None


# --- the content hash --------------------------------------------------------------------


def test_content_hash_ignores_comments_whitespace_and_key_order_but_not_rules() -> None:
    policy = load_policy(MINIMAL)
    reformatted = "# signed 2024-06-01\n\n" + MINIMAL.replace(
        'version = "v1"\npurposes = ["quality"]',
        "purposes = [ \"quality\" ]   # why\nversion = 'v1'",
    )
    other = load_policy(reformatted)
    assert other.sha256 == policy.sha256
    assert other.source_sha256 != policy.source_sha256
    changed = load_policy(MINIMAL.replace("per_agent_per_month = 4", "per_agent_per_month = 5"))
    assert changed.sha256 != policy.sha256


def test_content_hash_is_reproducible_with_the_documented_recipe() -> None:
    text = EXAMPLE.read_text("utf-8")
    recipe = hashlib.sha256(
        json.dumps(
            tomllib.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    ).hexdigest()
    policy = load_policy(text)
    assert policy.sha256 == recipe == content_sha256(tomllib.loads(text))
    assert policy.source_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- mistakes ----------------------------------------------------------------------------

MANY_MISTAKES = """\
version = 3
purposes = []
colour = "blue"

[teams.a]
agents = ["x", "y"]

[teams.b]
agents = [
  "z",
  "x",
]

[supervisors.s]
teams = ["a", "nope"]

[supervisors.t]

[quotas]
per_agent_per_month = -1
per_supervisor_per_day = "5"

[hours]
timezone = "Mars/Olympus"
allowed = [
  "Mon-Fri 18:00-08:00",
  "Xyz 08:00-09:00",
  "Mon-Fri 08:00-25:00",
]

[[exclusions]]
name = "empty"

[[exclusions]]
queue = "works-council"
privat = true

[consent]
caller = "maybe"

[notices]
default = "digest"
unannounced_allowed = false

[notices.teams]
c = "live"

[disclosure]
listener_name = true
"""


def test_a_file_with_many_mistakes_reports_each_at_its_line() -> None:
    text = MANY_MISTAKES
    found = keyed(text)
    expected_lines = {
        "version": line(text, "version = 3"),
        "purposes": line(text, "purposes = []"),
        "colour": line(text, "colour"),
        "teams.b.agents[1]": line(text, '  "x",'),
        "supervisors.s.teams[1]": line(text, 'teams = ["a", "nope"]'),
        "supervisors.t": line(text, "[supervisors.t]"),
        "quotas.per_agent_per_month": line(text, "per_agent_per_month"),
        "quotas.per_supervisor_per_day": line(text, "per_supervisor_per_day"),
        "hours.timezone": line(text, "Mars/Olympus"),
        "hours.allowed[0]": line(text, "18:00-08:00"),
        "hours.allowed[1]": line(text, "Xyz"),
        "hours.allowed[2]": line(text, "25:00"),
        "exclusions[0]": line(text, "[[exclusions]]", 1),
        "exclusions[1].privat": line(text, "privat = true"),
        "consent.caller": line(text, "maybe"),
        "notices.default": line(text, 'default = "digest"'),
        "notices.digest_schedule": line(text, "[notices]"),
        "notices.teams.c": line(text, 'c = "live"'),
        "disclosure.listener_names": line(text, "[disclosure]"),
        "disclosure.listener_name": line(text, "listener_name = true"),
        "retention": 1,
    }
    assert {k: n for k, (n, _) in found.items()} == expected_lines
    messages = {k: m for k, (_, m) in found.items()}
    assert (
        messages["version"] == 'expected a string, found an integer (3) (quote it: version = "3")'
    )
    assert messages["purposes"].startswith("must list at least one value")
    assert messages["colour"].startswith("unknown key")
    assert "already in team 'a'" in messages["teams.b.agents[1]"]
    assert messages["supervisors.s.teams[1]"] == "unknown team 'nope'; teams in [teams]: a, b"
    assert messages["supervisors.t"].startswith("grants nothing")
    assert messages["quotas.per_agent_per_month"] == "must be 0 or more, found -1"
    assert messages["quotas.per_supervisor_per_day"] == 'expected an integer, found a string ("5")'
    assert "unknown time zone 'Mars/Olympus'" in messages["hours.timezone"]
    assert "ends before it starts" in messages["hours.allowed[0]"]
    assert "'Xyz' is not a day" in messages["hours.allowed[1]"]
    assert "not a time of day" in messages["hours.allowed[2]"]
    assert messages["exclusions[0]"].startswith("matches nothing")
    assert messages["exclusions[1].privat"] == "unknown key; did you mean 'private'?"
    assert (
        messages["consent.caller"] == "'maybe' is not allowed; use one of: required, not_required"
    )
    assert "unannounced_allowed = false" in messages["notices.default"]
    assert messages["notices.digest_schedule"].startswith("missing; digest notices need a schedule")
    assert messages["notices.teams.c"] == "unknown team 'c'; teams in [teams]: a, b"
    assert messages["disclosure.listener_names"].startswith("missing")
    assert messages["disclosure.listener_name"] == "unknown key; did you mean 'listener_names'?"
    assert messages["retention"] == "missing; add a [retention] table"


def test_problems_come_in_file_order_and_the_error_is_a_config_error() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(MANY_MISTAKES, "site.toml")
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.code == "policy_invalid" and error.status == 500
    lines = [p.line for p in error.problems]
    assert lines == sorted(lines)
    assert (
        error.formatted()[0]
        == 'site.toml:1: version: expected a string, found an integer (3) (quote it: version = "3")'
    )
    body = error.to_json()["error"]
    assert body["code"] == "policy_invalid" and body["source"] == "site.toml"
    assert len(body["problems"]) == len(error.problems)
    assert body["problems"][0] == {
        "line": 1,
        "key": "version",
        "message": error.problems[0].message,
    }
    assert error.message.startswith(
        f"site.toml: {len(error.problems)} problems in the monitoring policy\n"
    )


@pytest.mark.parametrize(
    ("change", "key", "fragment"),
    [
        (
            ('purposes = ["quality"]', 'purposes = ["quality", "quality"]'),
            "purposes[1]",
            "listed twice",
        ),
        (
            ('purposes = ["quality"]', 'purposes = ["quality", 3]'),
            "purposes[1]",
            "expected a string",
        ),
        (('purposes = ["quality"]', 'purposes = ["  "]'), "purposes[0]", "must not be empty"),
        (('purposes = ["quality"]', 'purposes = " quality"'), "purposes", "expected an array"),
        (('version = "v1"', 'version = ""'), "version", "must not be empty"),
        (("days = 90", "days = 0"), "retention.days", "must be 1 or more"),
        (("days = 90", "days = true"), "retention.days", "expected an integer, found a boolean"),
        (("days = 90", "days = 9.5"), "retention.days", "expected an integer, found a float"),
        (
            ("listener_names = true", 'listener_names = "yes"'),
            "disclosure.listener_names",
            "expected a boolean",
        ),
        (
            ("unannounced_allowed = false", "unannounced_allowed = 0"),
            "notices.unannounced_allowed",
            "expected a boolean",
        ),
        (('default = "live"', 'default = "email"'), "notices.default", "'email' is not allowed"),
        (('allowed = ["Mon-Fri 08:00-18:00"]', "allowed = []"), "hours.allowed", "at least one"),
        (
            ('allowed = ["Mon-Fri 08:00-18:00"]', 'allowed = ["08:00-18:00"]'),
            "hours.allowed[0]",
            "not a window",
        ),
        (
            ('allowed = ["Mon-Fri 08:00-18:00"]', 'allowed = ["Mon-Fri 8h-18h"]'),
            "hours.allowed[0]",
            "not a time",
        ),
        (
            ('allowed = ["Mon-Fri 08:00-18:00"]', 'allowed = ["Mon-Fri 24:00-24:00"]'),
            "hours.allowed[0]",
            "not a time of day",
        ),
        (
            ('timezone = "Europe/Berlin"', 'timezone = "../../etc/passwd"'),
            "hours.timezone",
            "unknown time zone",
        ),
        (('timezone = "Europe/Berlin"', 'timezone = ""'), "hours.timezone", "must not be empty"),
        (
            ("[quotas]", "[quotas]\nper_listen_minutes = 5"),
            "quotas.per_listen_minutes",
            "unknown key",
        ),
        (
            (
                'caller = "required"',
                'caller = "required"\n[access]\nsupervisors_listen_to = ["everyone"]',
            ),
            "access.supervisors_listen_to[0]",
            "'everyone' is not allowed",
        ),
        (
            (
                'caller = "required"',
                'caller = "required"\n[access]\nsupervisors_listen_to = "own_teams"',
            ),
            "access.supervisors_listen_to",
            "expected an array",
        ),
        (
            ('caller = "required"', 'caller = "required"\n[access]\nsupervisors_listen_to = []'),
            "access.supervisors_listen_to",
            "at least one",
        ),
        (('version = "v1"', 'version = "v1"\nteams = ["a"]'), "teams", "expected a table"),
        (
            ('version = "v1"', 'version = "v1"\nexclusions = { queue = "x" }'),
            "exclusions",
            "expected an array",
        ),
        (
            ('version = "v1"', 'version = "v1"\nsupervisors = { s = ["a"] }'),
            "supervisors.s",
            "expected a table",
        ),
        (
            ('version = "v1"', 'version = "v1"\nteams = { a = ["x"] }'),
            "teams.a",
            "expected a table",
        ),
        (
            ('version = "v1"', 'version = "v1"\nteams = { a = { members = ["x"] } }'),
            "teams.a.agents",
            "missing",
        ),
        (('version = "v1"', 'version = "v1"\nwhen = 2024-06-01'), "when", "unknown key"),
        (
            ("[retention]", "[[exclusions]]\nprivate = false\n[retention]"),
            "exclusions[0].private",
            "private = false would",
        ),
        (
            ("[retention]", "[[exclusions]]\nqueue = []\n[retention]"),
            "exclusions[0].queue",
            "at least one",
        ),
        (
            ("[retention]", "[[exclusions]]\nqueue = 5\n[retention]"),
            "exclusions[0].queue",
            "a string or an array",
        ),
        (
            ("[retention]", "[[exclusions]]\nattributes = {}\n[retention]"),
            "exclusions[0].attributes",
            "matches nothing",
        ),
        (
            ("[retention]", "[[exclusions]]\nattributes = { vip = 1 }\n[retention]"),
            "exclusions[0].attributes.vip",
            "a string or an array",
        ),
        (
            ("[retention]", '[[exclusions]]\nname = 5\nsource = "demo"\n[retention]'),
            "exclusions[0].name",
            "expected a string",
        ),
        (
            (
                "unannounced_allowed = false",
                'unannounced_allowed = true\ndigest_schedule = "monthly 1st"',
            ),
            "notices.digest_schedule",
            "not a schedule",
        ),
        (
            (
                "unannounced_allowed = false",
                'unannounced_allowed = true\ndigest_schedule = "weekly Friday 16:00"',
            ),
            "notices.digest_schedule",
            "not a day",
        ),
        (
            (
                "unannounced_allowed = false",
                'unannounced_allowed = false\n[notices.teams]\na = "after_call"',
            ),
            "notices.teams.a",
            "unknown team",
        ),
    ],
)
def test_each_mistake_is_reported_at_its_key(
    change: tuple[str, str], key: str, fragment: str
) -> None:
    old, new = change
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    found = keyed(text)
    assert key in found, found
    number, message = found[key]
    assert fragment in message
    key_text = new.splitlines()[-1] if new.count("\n") else new
    first_word = key.split(".")[-1].split("[")[0]
    # The reported line is the line of the key (or of its table when the key is missing).
    assert number == line(text, key_text) or first_word not in key_text


def test_notice_modes_that_announce_nothing_need_unannounced_allowed() -> None:
    text = (MINIMAL + '[teams.a]\nagents = ["x"]\n[teams.b]\nagents = ["y"]\n').replace(
        'default = "live"\nunannounced_allowed = false',
        'default = "live"\nunannounced_allowed = false\n[notices.teams]\na = "after_call"\nb = "live"',
    )
    found = keyed(text)
    assert set(found) == {"notices.teams.a"}
    assert found["notices.teams.a"][0] == line(text, 'a = "after_call"')
    allowed = load_policy(text.replace("unannounced_allowed = false", "unannounced_allowed = true"))
    assert dict(allowed.notices.teams) == {"a": "after_call", "b": "live"}


def test_quoted_and_dotted_keys_are_reported_as_written() -> None:
    text = MINIMAL + (
        '[teams."2nd level"]\nagents = ["x"]\n'
        '[supervisors."sam.lee@example.com"]\nteams = ["2nd level", "3rd level"]\n'
    )
    found = keyed(text)
    assert set(found) == {'supervisors."sam.lee@example.com".teams[1]'}
    assert found['supervisors."sam.lee@example.com".teams[1]'][0] == line(text, '"3rd level"')


def test_missing_sections_are_reported_together() -> None:
    found = keyed('version = "v1"\n')
    assert set(found) == {
        "purposes",
        "quotas",
        "hours",
        "consent",
        "notices",
        "disclosure",
        "retention",
    }
    assert all(n == 1 for n, _ in found.values())


# --- syntax errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "fragment"),
    [
        ('version = "v1"\npurposes = = ["quality"]\n', 2, "Invalid value (column 12)"),
        ('version = "v1"\n\n\nversion = "v2"\n', 4, "Cannot overwrite a value"),
        ('version = "v1\npurposes = []\n', 1, "column"),
        ('version = "v1"\n[hours\ntimezone = "UTC"\n', 2, "column"),
        ('version = "v1"\npurposes = ["quality",\n', 3, "at the end of the file"),
        ("a = 1\nb = 2\nc = 3\nd = [1, 2\ne = 5\n", 5, "column"),
    ],
)
def test_syntax_errors_report_tomllibs_line(text: str, number: int, fragment: str) -> None:
    [(found_line, key, message)] = problems(text)
    assert (found_line, key) == (number, "syntax")
    assert message.startswith("not valid TOML: ")
    assert fragment in message


# --- files ---------------------------------------------------------------------------------


def test_check_policy_file_formats_file_line_key_message(tmp_path: Path) -> None:
    path = tmp_path / "site-policy.toml"
    path.write_text(
        MINIMAL.replace("days = 90", "days = -3").replace("[consent]", "[consent]\nagent = true")
    )
    assert check_policy_file(path) == [
        f"{path}:{line(path.read_text(), 'agent = true')}: consent.agent: unknown key; expected one of: caller",
        f"{path}:{line(path.read_text(), 'days = -3')}: retention.days: must be 1 or more, found -3",
    ]


def test_check_policy_file_on_a_valid_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.replace("\n", "\r\n").encode())  # BOM, CRLF
    assert check_policy_file(path) == []


def test_check_policy_file_on_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    [message] = check_policy_file(missing)
    assert message.startswith(f"{missing}: file: cannot read: ")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(
        MINIMAL.replace('version = "v1"', 'version = "v1"\n# Betriebsrat: Prüfung').encode(
            "latin-1"
        )
    )
    assert check_policy_file(latin1) == [
        f"{latin1}:2: encoding: not UTF-8 text; save the file as UTF-8"
    ]


# --- where keys are ------------------------------------------------------------------------


def test_key_lines_follows_toml_structure() -> None:
    text = """\
# a comment with = and [brackets]
title = "x # not a comment [nor a table]"
multi = \"\"\"
[not.a.table]
key = "not a key"
\"\"\"
literal = '''
# still text ''
'''
a.b."c.d" = 1
inline = { x = 1, y = { z = [
  1,
  2,
] } }

[[things]]
name = "first"

[[things]]
name = "second"
list = [
  "p",  # comment
  [
    "q",
  ],
]

[[things.parts]]
part = 1

["quoted key".sub]
when = 1979-05-27 07:32:00Z
"""
    lines = key_lines(text)
    assert lines[("title",)] == 2
    assert lines[("multi",)] == 3
    assert ("not", "a", "table") not in lines and ("key",) not in lines
    assert lines[("literal",)] == 7
    assert lines[("a", "b", "c.d")] == 10 and lines[("a",)] == 10
    assert lines[("inline", "y", "z")] == 11
    assert lines[("inline", "y", "z", 1)] == 13
    assert lines[("things", 0)] == 16 and lines[("things", 0, "name")] == 17
    assert lines[("things", 1)] == 19 and lines[("things", 1, "name")] == 20
    assert lines[("things", 1, "list", 0)] == 22
    assert lines[("things", 1, "list", 1, 0)] == 24
    assert lines[("things", 1, "parts", 0, "part")] == 29
    assert lines[("quoted key", "sub", "when")] == 32
    assert tomllib.loads(text)["things"][1]["parts"][0]["part"] == 1


def test_key_lines_never_raises_on_invalid_text() -> None:
    for text in ("[", 'a = "', "a = [1,", "= 1", "[[x]\n", "a = '''", "a.\n"):
        assert isinstance(key_lines(text), dict)


# --- windows and schedules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("Mon-Fri 08:00-18:00", {0, 1, 2, 3, 4}, 480, 1080),
        ("sat 09:00-13:00", {5}, 540, 780),
        ("Mon,Wed,Fri 7:30-9:00", {0, 2, 4}, 450, 540),
        ("Fri-Mon 00:00-24:00", {4, 5, 6, 0}, 0, 1440),
        ("Mon-Sun 22:00-24:00", set(range(7)), 1320, 1440),
    ],
)
def test_hours_windows_parse(text: str, days: set[int], start: int, end: int) -> None:
    window = parse_window(text)
    assert (set(window.days), window.start, window.end) == (days, start, end)


def test_hours_window_end_is_exclusive() -> None:
    window = parse_window("Mon-Fri 08:00-18:00")
    monday = datetime(2024, 6, 3)
    assert window.contains(monday.replace(hour=8)) and window.contains(
        monday.replace(hour=17, minute=59)
    )
    assert not window.contains(monday.replace(hour=18)) and not window.contains(
        monday.replace(hour=7, minute=59)
    )
    assert not window.contains(datetime(2024, 6, 8, 12))  # Saturday


def test_digest_schedule_next_time_follows_the_local_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    weekly = parse_schedule("weekly Fri 16:00")
    friday_noon = datetime(2024, 6, 7, 12, tzinfo=berlin)
    assert weekly.next_after(friday_noon, berlin) == datetime(2024, 6, 7, 16, tzinfo=berlin)
    assert weekly.next_after(friday_noon.replace(hour=16), berlin) == datetime(
        2024, 6, 14, 16, tzinfo=berlin
    )
    daily = parse_schedule("daily 17:00")
    # Across the end of summer time (27 Oct 2024): still 17:00 local, now UTC+1.
    after = daily.next_after(datetime(2024, 10, 26, 18, tzinfo=berlin), berlin)
    assert after == datetime(2024, 10, 27, 17, tzinfo=berlin)
    assert after.utcoffset() is not None and after.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]


def test_demo_policy_puts_each_simulated_agent_in_the_team_of_its_queue() -> None:
    policy = read_policy_file(DEMO)
    templates = demo_calls()
    for index in range(12):
        template = templates[index % len(templates)]
        assert policy.team_of(f"agent-{index + 1}") == template.queue
    assert templates[0].agent_id == "agent-1"
