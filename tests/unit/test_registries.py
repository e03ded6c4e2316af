"""The registries, as stories: organisations, categories and buurten, read from TOML files.

No I/O beyond files in tmp_path.
"""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from services.registries import (
    DEFAULT_CATEGORIES,
    DEMO_ORGANISATIONS,
    Buurt,
    Buurten,
    Organisation,
    OrganisationKind,
    Organisations,
    RegistryError,
    Sensitivity,
    load_buurten,
    load_categories,
    load_demo_buurten,
    load_organisations,
    load_registries,
    token_sha256,
    write_demo_organisations,
)
from services.settings import Settings

WOONZORG_TOKEN = "woonzorg-secret-token"
WIJKTEAM_TOKEN = "wijkteam-secret-token"

ORGANISATIONS_TOML = f"""
[[organisation]]
id = "woonzorg"
kind = "woningcorporatie"
name = "Woonzorg Nederland"
token_sha256 = "{token_sha256(WOONZORG_TOKEN)}"
buurten = ["BU0363FF03"]

[[organisation]]
id = "wijkteam-nieuw-west"
kind = "wijkteam"
name = "Wijkteam Nieuw-West"
token_sha256 = "{token_sha256(WIJKTEAM_TOKEN)}"
"""

# DOMAIN.md: the categories, and their sensitivity.
DOMAIN_CATEGORIES = {
    "grof-vuil": Sensitivity.OPEN,
    "onderhoud": Sensitivity.OPEN,
    "verloedering": Sensitivity.OPEN,
    "overlast": Sensitivity.OPEN,
    "veiligheid": Sensitivity.OPEN,
    "eenzaamheid": Sensitivity.VERTROUWELIJK,
    "armoede": Sensitivity.VERTROUWELIJK,
    "schulden": Sensitivity.VERTROUWELIJK,
    "jeugd": Sensitivity.VERTROUWELIJK,
    "gezondheid": Sensitivity.VERTROUWELIJK,
    "multiprobleem": Sensitivity.VERTROUWELIJK,
    "radicalisering": Sensitivity.VERTROUWELIJK,
}


def written(tmp_path: Path, text: str, name: str = "registry.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def organisation_entry(**fields: object) -> str:
    """One [[organisation]] entry: a valid one, with `fields` replaced (None leaves one out)."""
    values: dict[str, object] = {
        "id": "stadgenoot",
        "kind": "woningcorporatie",
        "name": "Stadgenoot",
        "token_sha256": token_sha256("stadgenoot-token"),
    } | fields
    lines = ["[[organisation]]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return str(value)


def refusal(load: object, path: Path) -> RegistryError:
    assert callable(load)
    with pytest.raises(RegistryError) as refused:
        load(path)
    assert refused.value.path == path
    assert str(path) in str(refused.value)
    return refused.value


class TestOrganisations:
    def test_a_valid_file_gives_every_organisation_with_its_kind_and_buurten(
        self, tmp_path: Path
    ) -> None:
        organisations = load_organisations(written(tmp_path, ORGANISATIONS_TOML))

        assert len(organisations) == 2
        woonzorg = organisations.get("woonzorg")
        assert woonzorg is not None
        assert woonzorg.kind is OrganisationKind.WONINGCORPORATIE
        assert woonzorg.name == "Woonzorg Nederland"
        # Active only where the file says; without `buurten`, everywhere.
        assert woonzorg.buurten == frozenset({"BU0363FF03"})
        assert woonzorg.is_active_in("BU0363FF03")
        assert not woonzorg.is_active_in("BU0363FG01")
        wijkteam = organisations.get("wijkteam-nieuw-west")
        assert wijkteam is not None and wijkteam.buurten is None
        assert wijkteam.is_active_in("BU0363FG01")
        assert "woonzorg" in organisations and "ymere" not in organisations
        assert organisations.get("ymere") is None

    def test_a_token_finds_its_own_organisation_and_nothing_else_does(self, tmp_path: Path) -> None:
        organisations = load_organisations(written(tmp_path, ORGANISATIONS_TOML))

        # Each token finds its own organisation.
        assert getattr(organisations.by_token(WOONZORG_TOKEN), "id", None) == "woonzorg"
        assert getattr(organisations.by_token(WIJKTEAM_TOKEN), "id", None) == "wijkteam-nieuw-west"
        # A wrong, empty, or almost-right token finds none; nor does the stored digest itself.
        assert organisations.by_token("not-a-token") is None
        assert organisations.by_token("") is None
        assert organisations.by_token(WOONZORG_TOKEN + " ") is None
        assert organisations.by_token(token_sha256(WOONZORG_TOKEN)) is None
        # Text that is not valid UTF-8 is just a wrong token.
        assert organisations.by_token("\udcff") is None

    @pytest.mark.parametrize(
        ("fields", "field", "says"),
        [
            ({"id": "Woonzorg"}, "id", "not a slug"),
            ({"id": "-woonzorg"}, "id", "not a slug"),
            ({"id": "w"}, "id", "not a slug"),
            ({"id": "w" * 33}, "id", "not a slug"),
            ({"id": None}, "id", "missing"),
            ({"kind": "corporatie"}, "kind", "'corporatie' is not one of woningcorporatie"),
            ({"kind": None}, "kind", "missing"),
            ({"name": None}, "name", "missing"),
            ({"name": "  "}, "name", "blank"),
            ({"name": 7}, "name", "must be a string, not a number"),
            ({"token_sha256": "ABC" + "0" * 61}, "token_sha256", "64 lowercase hex"),
            ({"token_sha256": "0" * 63}, "token_sha256", "64 lowercase hex"),
            ({"buurten": ["BU0363ff03"]}, "buurten", "not a CBS buurt code"),
            ({"buurten": "BU0363FF03"}, "buurten", "must be a list of strings"),
            ({"buurten": ["BU0363FF03", 3]}, "buurten", "item 2 must be a string"),
            ({"buurten": []}, "buurten", "at least one buurt"),
            # A typo must not silently make an organisation active everywhere.
            ({"buurt": ["BU0363FF03"]}, "buurt", "unknown field"),
        ],
    )
    def test_a_bad_field_is_refused_naming_file_entry_and_field(
        self, tmp_path: Path, fields: dict[str, object], field: str, says: str
    ) -> None:
        # The first entry is fine; the second has the bad field.
        fine = organisation_entry(id="eigen-haard", token_sha256=token_sha256("x"))
        path = written(tmp_path, fine + organisation_entry(**fields))

        error = refusal(load_organisations, path)

        assert len(error.problems) == 1
        [problem] = error.problems
        assert problem.startswith("[[organisation]] entry 2")
        assert f"field {field!r}" in problem
        assert says in problem

    def test_an_entry_is_named_by_its_id_when_it_has_one(self, tmp_path: Path) -> None:
        path = written(tmp_path, organisation_entry(kind="corporatie"))

        error = refusal(load_organisations, path)

        assert error.problems[0].startswith("[[organisation]] entry 1 (id 'stadgenoot'), field")

    def test_every_problem_of_the_file_is_named_at_once(self, tmp_path: Path) -> None:
        path = written(
            tmp_path,
            organisation_entry(kind="corporatie", token_sha256="nope")
            + organisation_entry(id="Bad Id", token_sha256=token_sha256("y")),
        )

        error = refusal(load_organisations, path)

        assert len(error.problems) == 3
        assert "entry 1 (id 'stadgenoot'), field 'kind'" in error.problems[0]
        assert "entry 1 (id 'stadgenoot'), field 'token_sha256'" in error.problems[1]
        assert "entry 2 (id 'Bad Id'), field 'id'" in error.problems[2]

    def test_a_duplicate_id_or_a_shared_token_is_refused(self, tmp_path: Path) -> None:
        same_id = written(
            tmp_path, organisation_entry() + organisation_entry(token_sha256=token_sha256("b"))
        )
        same_token = written(
            tmp_path, organisation_entry() + organisation_entry(id="ymere"), name="t.toml"
        )

        assert refusal(load_organisations, same_id).problems == [
            "[[organisation]] entry 2 (id 'stadgenoot'), field 'id': already used by entry 1"
        ]
        assert refusal(load_organisations, same_token).problems == [
            "[[organisation]] entry 2 (id 'ymere'), field 'token_sha256': same token as entry 1"
        ]
        # Built in code, a registry refuses a duplicate too.
        stadgenoot = Organisation(
            id="stadgenoot",
            kind=OrganisationKind.WONINGCORPORATIE,
            name="Stadgenoot",
            token_sha256=token_sha256("a"),
        )
        with pytest.raises(ValueError, match="stadgenoot"):
            Organisations([stadgenoot, stadgenoot])

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("[[organisation]\nid = 1", "is not valid TOML"),
            ("", "no [[organisation]] entries"),
            ("organisation = []", "no [[organisation]] entries"),
            ('organisation = "woonzorg"', "malformed [[organisation]] entries"),
            ('[[organisations]]\nid = "woonzorg"', "unknown top-level key 'organisations'"),
        ],
    )
    def test_a_file_without_usable_entries_is_refused(
        self, tmp_path: Path, text: str, says: str
    ) -> None:
        assert says in str(refusal(load_organisations, written(tmp_path, text)))

    def test_a_missing_or_unreadable_file_is_refused_naming_it(self, tmp_path: Path) -> None:
        assert refusal(load_organisations, tmp_path / "absent.toml").problems == ["no such file"]
        assert refusal(load_organisations, tmp_path).problems[0].startswith("cannot be read")
        latin1 = tmp_path / "latin1.toml"
        latin1.write_bytes('[[organisation]]\nname = "Caf\xe9"\n'.encode("latin-1"))
        assert refusal(load_organisations, latin1).problems == ["is not UTF-8 text"]


class TestDemoOrganisations:
    def test_the_demo_file_holds_digests_only_and_every_token_opens_its_organisation(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "data" / "organisations.toml"

        tokens = write_demo_organisations(path)

        # Readable by its owner alone; no partial file left behind.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == ["organisations.toml"]
        # The tokens are not in the file; their digests are.
        text = path.read_text(encoding="utf-8")
        for token in tokens.values():
            assert token not in text
            assert token_sha256(token) in text
        # It loads, and each token finds its own organisation.
        organisations = load_organisations(path)
        assert set(tokens) == {organisation.id for organisation in organisations}
        for org_id, token in tokens.items():
            assert getattr(organisations.by_token(token), "id", None) == org_id

    def test_the_demo_has_every_kind_and_the_partners_of_the_domain(self, tmp_path: Path) -> None:
        write_demo_organisations(tmp_path / "o.toml")
        organisations = load_organisations(tmp_path / "o.toml")

        assert {o.kind for o in organisations} == set(OrganisationKind)
        ids = {o.id for o in organisations}
        assert {"woonzorg", "wijkteam-nieuw-west", "gemeente-amsterdam", "bewonersportaal"} <= ids
        # Where a demo organisation is limited to some buurten, those are demo buurten.
        demo_buurten = load_demo_buurten()
        for organisation in organisations:
            assert all(code in demo_buurten for code in organisation.buurten or ())
        assert any(o.buurten is not None for o in organisations)

    def test_tokens_are_fresh_each_time_and_an_existing_file_is_never_overwritten(
        self, tmp_path: Path
    ) -> None:
        first = write_demo_organisations(tmp_path / "a.toml")
        second = write_demo_organisations(tmp_path / "b.toml")
        assert set(first.values()).isdisjoint(second.values())
        assert len(set(first.values())) == len(DEMO_ORGANISATIONS)

        before = (tmp_path / "a.toml").read_bytes()
        with pytest.raises(FileExistsError):
            write_demo_organisations(tmp_path / "a.toml")
        assert (tmp_path / "a.toml").read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.toml", "b.toml"]


class TestCategories:
    def test_the_shipped_categories_are_those_of_the_domain(self) -> None:
        shipped = {category.code: category.sensitivity for category in DEFAULT_CATEGORIES}

        assert shipped == DOMAIN_CATEGORIES

    def test_the_group_of_a_vertrouwelijk_category_gives_nothing_away(self) -> None:
        # Everyone sees an issue's group, so the social categories share one.
        groups = {c.group for c in DEFAULT_CATEGORIES if c.sensitivity is Sensitivity.VERTROUWELIJK}
        assert groups == {"sociaal"}
        assert all(
            c.group != "sociaal" for c in DEFAULT_CATEGORIES if c.sensitivity is Sensitivity.OPEN
        )

    def test_content_of_open_categories_is_for_all_and_of_vertrouwelijk_ones_for_few(
        self,
    ) -> None:
        grof_vuil, eenzaamheid, radicalisering = (
            DEFAULT_CATEGORIES.get(code) for code in ("grof-vuil", "eenzaamheid", "radicalisering")
        )
        assert grof_vuil and eenzaamheid and radicalisering

        assert all(grof_vuil.shows_content_to(kind) for kind in OrganisationKind)
        assert eenzaamheid.shows_content_to(OrganisationKind.WIJKTEAM)
        assert not eenzaamheid.shows_content_to(OrganisationKind.WONINGCORPORATIE)
        assert not eenzaamheid.shows_content_to(OrganisationKind.POLITIE)
        assert {k for k in OrganisationKind if radicalisering.shows_content_to(k)} == {
            OrganisationKind.WIJKTEAM,
            OrganisationKind.GEMEENTE,
            OrganisationKind.POLITIE,
        }
        # Every social category lets the wijkteam see content; none lets residents.
        for c in DEFAULT_CATEGORIES:
            if c.sensitivity is Sensitivity.VERTROUWELIJK:
                assert c.shows_content_to(OrganisationKind.WIJKTEAM)
                assert not c.shows_content_to(OrganisationKind.BEWONERS)

    def test_target_times_are_days_for_public_space_and_shortest_for_danger(self) -> None:
        def target(code: str) -> timedelta:
            category = DEFAULT_CATEGORIES.get(code)
            assert category is not None
            return category.target_time_to_ownership

        for code, sensitivity in DOMAIN_CATEGORIES.items():
            if sensitivity is Sensitivity.OPEN and code != "veiligheid":
                assert timedelta(days=2) <= target(code) <= timedelta(days=5)
            else:
                assert timedelta(days=1) <= target(code) <= timedelta(days=3)
        shortest = min(c.target_time_to_ownership for c in DEFAULT_CATEGORIES)
        assert target("veiligheid") == target("radicalisering") == shortest

    def test_a_deployment_can_load_its_own_categories(self, tmp_path: Path) -> None:
        path = written(
            tmp_path,
            """
            [[category]]
            code = "zwerfafval"
            label = "Zwerfafval"
            group = "openbare ruimte"
            sensitivity = "open"
            target_hours = 36

            [[category]]
            code = "huiselijk-geweld"
            label = "Huiselijk geweld"
            group = "sociaal"
            sensitivity = "vertrouwelijk"
            content_visible_to = ["wijkteam", "politie"]
            target_hours = 4.5
            """,
        )

        categories = load_categories(path)

        assert [c.code for c in categories] == ["zwerfafval", "huiselijk-geweld"]
        zwerfafval, geweld = categories
        assert zwerfafval.content_visible_to == frozenset()
        assert zwerfafval.target_time_to_ownership == timedelta(hours=36)
        assert geweld.sensitivity is Sensitivity.VERTROUWELIJK
        assert geweld.content_visible_to == {OrganisationKind.WIJKTEAM, OrganisationKind.POLITIE}
        assert geweld.target_time_to_ownership == timedelta(hours=4, minutes=30)

    @pytest.mark.parametrize(
        ("line", "field", "says"),
        [
            ('sensitivity = "geheim"', "sensitivity", "not one of open | vertrouwelijk"),
            ('content_visible_to = ["buurman"]', "content_visible_to", "'buurman' is not one of"),
            ("target_hours = 0", "target_hours", "positive"),
            ("target_hours = -3", "target_hours", "positive"),
            ('target_hours = "48"', "target_hours", "must be a number, not a string"),
            ("target_hours = true", "target_hours", "must be a number, not a boolean"),
            ("target_hours = inf", "target_hours", "finite"),
            ("target_hours = 1e300", "target_hours", "too long"),
            ('code = "Grof Vuil"', "code", "not a slug"),
            ('label = ""', "label", "blank"),
            ('colour = "red"', "colour", "unknown field"),
        ],
    )
    def test_a_bad_category_field_is_refused_naming_file_entry_and_field(
        self, tmp_path: Path, line: str, field: str, says: str
    ) -> None:
        fields = {
            "code": 'code = "jeugd"',
            "label": 'label = "Jeugd"',
            "group": 'group = "sociaal"',
            "sensitivity": 'sensitivity = "vertrouwelijk"',
            "target_hours": "target_hours = 48",
        }
        fields[line.split(" = ")[0]] = line
        path = written(tmp_path, "[[category]]\n" + "\n".join(fields.values()))

        [problem] = refusal(load_categories, path).problems

        assert problem.startswith("[[category]] entry 1")
        assert f"field {field!r}" in problem
        assert says in problem

    def test_a_category_code_used_twice_is_refused(self, tmp_path: Path) -> None:
        entry = '[[category]]\ncode = "jeugd"\nlabel = "Jeugd"\ngroup = "sociaal"\n'
        entry += 'sensitivity = "vertrouwelijk"\ntarget_hours = 48\n'

        [problem] = refusal(load_categories, written(tmp_path, entry + entry)).problems

        assert problem == (
            "[[category]] entry 2 (code 'jeugd'), field 'code': already used by entry 1"
        )


class TestBuurten:
    @pytest.mark.parametrize(
        "code",
        [
            "bu0363ff03",  # lower case
            "BU0363FF0",  # too short
            "BU0363FF033",  # too long
            "BU036XFF03",  # letter in the gemeente
            "BU0363ff03",
            "BU0363FF03\n",
            " BU0363FF03",
            "WK0363FF",
            "BU\u0660\u0663\u0666\u0663FF03",  # Arabic-Indic digits: Unicode digits, not CBS ones
            "",
            "BU0363FF03.>",
        ],
    )
    def test_a_malformed_code_is_always_refused(self, code: str) -> None:
        for buurten in (Buurten(), load_demo_buurten()):
            [reason] = buurten.check(code)
            assert "is not a CBS buurt code" in reason

    def test_without_a_list_any_well_formed_code_is_accepted(self) -> None:
        anything = Buurten()

        assert not anything.enforces_list
        assert anything.check("BU0363FF03") == []
        assert anything.check("BU19040213") == []

    def test_with_a_list_only_the_listed_buurten_are_accepted(self, tmp_path: Path) -> None:
        path = written(
            tmp_path,
            """
            [[buurt]]
            code = "BU0363FF03"
            name = "Bedrijvenpark Lutkemeer"
            wijk = "WK0363FF"

            [[buurt]]
            code = "BU19040213"
            name = "Ergens in Stichtse Vecht"
            """,
        )

        buurten = load_buurten(path)

        assert buurten.enforces_list
        assert len(buurten) == 2
        assert buurten.get("BU0363FF03") == Buurt(
            code="BU0363FF03", name="Bedrijvenpark Lutkemeer", wijk="WK0363FF"
        )
        assert buurten.check("BU0363FF03") == []
        assert buurten.check("BU19040213") == []
        assert buurten.check("BU0363FG01") == [
            "buurt BU0363FG01 is not one of the buurten this deployment knows"
        ]

    def test_the_shipped_demo_list_is_amsterdam_nieuw_west(self) -> None:
        demo = load_demo_buurten()

        assert demo.enforces_list
        assert 10 <= len(demo) <= 15
        lutkemeer = demo.get("BU0363FF03")
        assert lutkemeer is not None and lutkemeer.name == "Bedrijvenpark Lutkemeer"
        # Stadsdeel Nieuw-West is F in Amsterdam's codes.
        assert all(buurt.code.startswith("BU0363F") for buurt in demo)
        assert all(buurt.wijk == f"WK{buurt.code[2:8]}" for buurt in demo)

    @pytest.mark.parametrize(
        ("lines", "field", "says"),
        [
            ('code = "BU0363FF3"', "code", "is not a CBS buurt code"),
            ("code = 363", "code", "must be a string"),
            ('wijk = "WK0363F"', "wijk", "is not a CBS wijk code"),
            ('wijk = "WK0363FG"', "wijk", "does not contain buurt BU0363FF03 (WK0363FF)"),
            ('name = ""', "name", "blank"),
            ('gemeente = "GM0363"', "gemeente", "unknown field"),
        ],
    )
    def test_a_bad_buurt_is_refused_naming_file_entry_and_field(
        self, tmp_path: Path, lines: str, field: str, says: str
    ) -> None:
        fields = {"code": 'code = "BU0363FF03"', "name": 'name = "Bedrijvenpark Lutkemeer"'}
        fields[lines.split(" = ")[0]] = lines
        path = written(tmp_path, "[[buurt]]\n" + "\n".join(fields.values()))

        [problem] = refusal(load_buurten, path).problems

        assert problem.startswith("[[buurt]] entry 1")
        assert f"field {field!r}" in problem
        assert says in problem

    def test_a_buurt_listed_twice_is_refused(self, tmp_path: Path) -> None:
        entry = '[[buurt]]\ncode = "BU0363FF03"\nname = "Bedrijvenpark Lutkemeer"\n'

        [problem] = refusal(load_buurten, written(tmp_path, entry * 2)).problems

        assert "entry 2 (code 'BU0363FF03'), field 'code': already used by entry 1" in problem


class TestLoadRegistries:
    def test_a_first_start_creates_the_demo_organisations_and_hands_their_tokens_over_once(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(data_dir=tmp_path / "data")

        # First start: the demo file appears in the data folder, with tokens to show.
        first = load_registries(settings)
        path = tmp_path / "data" / "organisations.toml"
        assert first.organisations_source == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(first.demo_tokens) == {o.id for o in first.organisations}
        assert "demo_tokens" not in repr(first)
        # The shipped categories and demo buurten come with it.
        assert len(first.categories) == len(DOMAIN_CATEGORIES)
        assert first.buurten_source == "shipped demo list"
        assert "BU0363FF03" in first.buurten
        assert first.buurten_of_unknown_organisations() == {}

        # Second start: the same organisations, and no tokens to show.
        second = load_registries(settings)
        assert second.demo_tokens == {}
        assert [o.id for o in second.organisations] == [o.id for o in first.organisations]
        token = first.demo_tokens["woonzorg"]
        assert getattr(second.organisations.by_token(token), "id", None) == "woonzorg"

    def test_a_named_organisations_file_that_is_missing_is_an_error_not_a_demo(
        self, tmp_path: Path
    ) -> None:
        missing = tmp_path / "partners.toml"
        settings = Settings(data_dir=tmp_path / "data", organisations_file=missing)

        with pytest.raises(RegistryError, match="BUURTBEELD_ORGANISATIONS") as refused:
            load_registries(settings)

        assert refused.value.path == missing
        assert not missing.exists()
        assert not (tmp_path / "data" / "organisations.toml").exists()

    def test_named_files_are_used_as_they_are(self, tmp_path: Path) -> None:
        organisations = written(tmp_path, ORGANISATIONS_TOML, "partners.toml")
        buurten = written(
            tmp_path, '[[buurt]]\ncode = "BU0363FF03"\nname = "Lutkemeer"\n', "buurten.toml"
        )
        settings = Settings(
            data_dir=tmp_path / "data", organisations_file=organisations, buurten_file=buurten
        )

        registries = load_registries(settings)

        assert registries.demo_tokens == {}
        assert registries.organisations_source == str(organisations)
        assert registries.buurten_source == str(buurten)
        assert [b.code for b in registries.buurten] == ["BU0363FF03"]
        assert not (tmp_path / "data" / "organisations.toml").exists()

    def test_organisations_active_in_buurten_the_list_lacks_are_pointed_out(
        self, tmp_path: Path
    ) -> None:
        buurten = written(
            tmp_path, '[[buurt]]\ncode = "BU0363FG01"\nname = "Wildemanbuurt"\n', "buurten.toml"
        )
        settings = Settings(
            data_dir=tmp_path,
            organisations_file=written(tmp_path, ORGANISATIONS_TOML, "partners.toml"),
            buurten_file=buurten,
        )

        registries = load_registries(settings)

        assert registries.buurten_of_unknown_organisations() == {"woonzorg": ["BU0363FF03"]}

    def test_a_bad_buurten_file_stops_the_start_before_any_demo_tokens_are_made(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(
            data_dir=tmp_path / "data", buurten_file=written(tmp_path, "[[buurt]]\ncode = 1\n")
        )

        with pytest.raises(RegistryError):
            load_registries(settings)

        # Tokens that could never be shown would lock everyone out of the demo.
        assert not (tmp_path / "data" / "organisations.toml").exists()
