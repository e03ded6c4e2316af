"""Live buurt pictures put together from kept, encoded issues: byte for byte the plain answer.

`BuurtAnswers.answer` keeps each buurt's open issues, encoded per visibility
class, between commits (`projections.live_buurten`). Whatever happens between
two questions — a story of signals and commands in two buurten, committed by
the real runner on SQLite and on PostgreSQL, announced on `PictureChanges` —
every reader's answer must be exactly what `PictureQueries.buurt_issues`
encodes for that reader at that moment: same issues, same content shown or
hidden, same counts and `mine`. And one reader's content never reaches another.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from events.contract import AcceptHandover, Claim, Handover, Location, Reporter
from projections.answers import BuurtAnswers, RecentAnswers
from projections.changes import QUEUE_LIMIT, PictureChanges
from projections.queries import PictureQueries
from projections.runner import ProjectionRunner
from projections.store import PostgresViewStore, SQLiteViewStore, ViewStore
from projections.visibility import Visibility
from services.coordination.application import Coordination
from services.coordination.refusals import Forbidden, InvalidCommand
from services.registries import DEFAULT_CATEGORIES, Organisation, OrganisationKind
from tests.integration.test_projections import POSTGRES_URL, ListFeed
from tests.unit.test_coordination import BUURT, OTHER_BUURT, Clock, coordination, signal
from tests.unit.test_picture import POPO, act, random_story, stored_events
from tests.unit.test_visibility import STADGENOOT, WIJKTEAM, WOONZORG, org

pytestmark = pytest.mark.anyio
SECRET = "Mevrouw op 3-hoog komt al weken de deur niet uit"
OFFSETS = (0, 999_999, 59_999_999, 1)


# Same id as the wijkteam, another kind: a kept answer must not be taken for the other's.
WIJKTEAM_AS_CORPORATION = org("wijkteam-nieuw-west", OrganisationKind.WONINGCORPORATIE)
BEWONERS = org("bewonersportaal", OrganisationKind.BEWONERS)
ELSEWHERE = org("buurtwerk-osdorp", OrganisationKind.WELZIJN, OTHER_BUURT)
READERS = (WOONZORG, STADGENOOT, WIJKTEAM, WIJKTEAM_AS_CORPORATION, BEWONERS, ELSEWHERE)
QUESTIONS: tuple[dict[str, Any], ...] = (
    {},
    {"status": "unowned"},
    {"status": "owned"},
    {"status": "handover-pending"},
    {"owner": "woonzorg"},
    {"owner": "wijkteam-nieuw-west", "status": "open"},
    {"category": "eenzaamheid"},
    {"category": "sociaal"},
    {"category": "grof-vuil"},
    {"status": "resolved"},
    {"status": "all", "owner": "stadgenoot"},
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
def views(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewStore]:
    """A fresh view store: SQLite (read on the event loop) or PostgreSQL (read in threads)."""
    if request.param == "sqlite":
        store: ViewStore = SQLiteViewStore(tmp_path / "views.sqlite")
    else:
        store = PostgresViewStore(POSTGRES_URL, f"t{uuid4().hex[:12]}")
    try:
        yield store
    finally:
        if isinstance(store, PostgresViewStore):
            with store._transaction() as cur:
                cur.execute(
                    "SELECT tablename FROM pg_tables WHERE tablename LIKE %s",
                    (f"{store.namespace}_%",),
                )
                for (table,) in cur.fetchall():
                    cur.execute(f"DROP TABLE {table}")
        store.close()


class Picture:
    """The coordination, its projection on `store`, and both ways of answering."""

    def __init__(
        self,
        store: ViewStore,
        *,
        budget_bytes: int = 16 * 1024 * 1024,
        idle_seconds: float = 30.0,
        answers_max_age: float = -1.0,
    ) -> None:
        self.clock = Clock()
        self.app: Coordination = coordination(POPO, self.clock)
        self.store = store
        self.generation = store.prepare()
        self.changes = PictureChanges()
        self.moment: datetime = self.clock.at
        self.projected = 0
        self.queries = PictureQueries(
            store,
            Visibility(DEFAULT_CATEGORIES),
            buurt_feed=lambda buurt: ListFeed([]),
            issue_events=lambda issue_id: [],
            unseal=self.app.personal_data.unseal,
            clock=lambda: self.moment,
        )
        # Kept answers are not given again unless a test says so: their `asOf` is older.
        self.answers = BuurtAnswers(
            self.queries,
            self.changes,
            budget_bytes=budget_bytes,
            idle_seconds=idle_seconds,
            recent=RecentAnswers(max_age=answers_max_age, gzip_after=1),
        )

    async def project(self, commit_every: int = 5) -> None:
        """Fold what the coordination stored since the last time, committing every few events."""
        runner = ProjectionRunner(
            self.store,
            ListFeed(stored_events(self.app)),
            on_commit=self.changes.publish,
            catch_up_events=commit_every,
        )
        await runner.run(self.generation, follow=False)
        # Ages move on between questions, to just before (and at) a whole second.
        self.projected += 1
        self.moment = self.clock.at + timedelta(microseconds=OFFSETS[self.projected % 4])

    async def fast(self, reader: Organisation, buurt: str = BUURT, **question: Any) -> bytes:
        """The answer as a client taking gzip reads it: a kept answer comes in gzip."""
        answer = await self.answers.answer(reader, buurt, gzip=True, **question)
        return gzip.decompress(answer.body) if answer.gzipped else answer.body

    async def plain(self, reader: Organisation, buurt: str = BUURT, **question: Any) -> bytes:
        return msgspec.json.encode(await self.queries.buurt_issues(reader, buurt, **question))

    async def assert_every_answer_is_the_plain_one(self) -> None:
        for buurt in (BUURT, OTHER_BUURT):
            for reader in READERS:
                for question in QUESTIONS:
                    try:
                        expected = await self.plain(reader, buurt, **question)
                    except Forbidden:
                        with pytest.raises(Forbidden):
                            await self.fast(reader, buurt, **question)
                        continue
                    got = await self.fast(reader, buurt, **question)
                    assert got == expected, (reader, buurt, question)


def lonely_neighbour(app: Coordination) -> str:
    """Woonzorg's caretaker reports a lonely tenant: vertrouwelijk; the issue's id."""
    reported = msgspec.structs.replace(
        signal("wz-lonely", key="portiek-3", category="eenzaamheid"),
        summary=SECRET,
        location=Location(key="portiek-3", address="Louweshoek 3"),
        reporter=Reporter(role="huismeester", name="J. de Vries", phone="0612345678"),
    )
    [outcome] = app.receive([("woonzorg", reported)])
    assert outcome.issue_id is not None
    return outcome.issue_id


async def test_a_vertrouwelijk_issue_shows_its_content_to_whom_need_to_know_says_asked_in_turn(
    views: ViewStore,
) -> None:
    # Answers are kept and given again (for a second): by reader, never to another.
    picture = Picture(views, answers_max_age=60.0)
    issue_id = lonely_neighbour(picture.app)
    picture.app.receive([("stadgenoot", signal("sg-1", key="containers"))])
    await picture.project()

    # The reporter and the wijkteam see the content; stadgenoot, asking in between, does not.
    for _ in range(2):
        assert SECRET.encode() in await picture.fast(WOONZORG)
        assert SECRET.encode() not in await picture.fast(STADGENOOT)
        assert SECRET.encode() in await picture.fast(WIJKTEAM)
        assert SECRET.encode() not in await picture.fast(WIJKTEAM_AS_CORPORATION)
        assert SECRET.encode() not in await picture.fast(BEWONERS)
    hidden = msgspec.json.decode(await picture.fast(STADGENOOT))
    [lonely] = [i for i in hidden["issues"] if i["id"] == issue_id]
    assert (lonely["category"], lonely["contentVisible"], lonely["summary"]) == (
        "sociaal",
        False,
        None,
    )
    # The residents' portal sees none of it: not one of its own signals.
    assert msgspec.json.decode(await picture.fast(BEWONERS))["issues"] == []

    # Stadgenoot claims it: as owner it sees the content, from the next commit on.
    picture.app.handle("stadgenoot", "claim", Claim(issue_id=issue_id))
    await picture.project()
    assert SECRET.encode() in await picture.fast(STADGENOOT)
    assert msgspec.json.decode(await picture.fast(STADGENOOT))["mine"] == [issue_id]

    # It hands over to the wijkteam, which accepts: stadgenoot no longer sees the content.
    picture.app.handle("stadgenoot", "handover", Handover(issue_id=issue_id, to=WIJKTEAM.id))
    await picture.project()
    assert msgspec.json.decode(await picture.fast(WIJKTEAM))["mine"] == [issue_id]
    picture.app.handle(WIJKTEAM.id, "accept-handover", AcceptHandover(issue_id=issue_id))
    await picture.project()
    assert SECRET.encode() not in await picture.fast(STADGENOOT)
    assert SECRET.encode() in await picture.fast(WOONZORG)
    await picture.assert_every_answer_is_the_plain_one()


async def test_refusals_are_the_plain_answers_refusals(views: ViewStore) -> None:
    picture = Picture(views)
    with pytest.raises(Forbidden):
        await picture.fast(ELSEWHERE, BUURT)
    with pytest.raises(InvalidCommand):
        await picture.fast(WOONZORG, "BU03")
    with pytest.raises(InvalidCommand):
        await picture.fast(WOONZORG, BUURT, status="half-open")
    # Asked once by someone who may, the buurt is kept: still refused to who may not.
    await picture.fast(WOONZORG, BUURT)
    with pytest.raises(Forbidden):
        await picture.fast(ELSEWHERE, BUURT)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_random_story_in_two_buurten_every_reader_every_question_as_the_plain_answer(
    views: ViewStore, seed: int
) -> None:
    # Small budgets too: buurten are dropped and read again along the way (idle at once),
    # or the second buurt is never kept (the first one is never idle).
    budget, idle = [(16 * 1024 * 1024, 30.0), (4096, 0.0), (1, 30.0)][seed % 3]
    picture = Picture(views, budget_bytes=budget, idle_seconds=idle)
    rnd = random.Random(seed)
    issues: list[str] = []
    for _round in range(8):
        for step in random_story(rnd, 12):
            if step[0] == "signal" and rnd.random() < 0.5:
                # Some in the other buurt, some by the residents' portal.
                _, organisation, place, _n = step
                ref = f"more-{len(issues)}-{rnd.random()}"
                if rnd.random() < 0.5:
                    sent = signal(ref, str(place), buurt=OTHER_BUURT)
                else:
                    organisation, sent = BEWONERS.id, signal(ref, str(place), "eenzaamheid")
                picture.app.receive([(str(organisation), sent)])
                continue
            act(picture.app, picture.clock, step, issues)
        await picture.project(commit_every=rnd.choice([1, 3, 50]))
        await picture.assert_every_answer_is_the_plain_one()


async def test_a_commit_elsewhere_reads_nothing_again_and_one_change_reads_one_row(
    tmp_path: Path,
) -> None:
    counting = CountingStore(tmp_path / "views.sqlite")
    picture = Picture(counting)
    picture.app.receive([("woonzorg", signal(f"wz-{n}", key=f"place-{n}")) for n in range(20)])
    await picture.project()
    first = await picture.fast(WOONZORG)
    assert counting.read == {"issues": 1}

    # A signal in the other buurt: this buurt's answer is put together again from memory.
    picture.app.receive([("woonzorg", signal("elsewhere", buurt=OTHER_BUURT))])
    await picture.project()
    assert await picture.fast(WOONZORG) == await picture.plain(WOONZORG)
    assert counting.read == {"issues": 2}  # the plain answer's read, none of ours
    assert len(first) > 0

    # One issue here claimed: that row is read again, the others are not.
    [one, *_] = msgspec.json.decode(first)["issues"]
    picture.app.handle("stadgenoot", "claim", Claim(issue_id=one["id"]))
    await picture.project()
    answer = msgspec.json.decode(await picture.fast(WOONZORG))
    assert counting.read == {"issues": 2, "issue": 1}
    assert [i["owner"] for i in answer["issues"] if i["id"] == one["id"]] == ["stadgenoot"]
    assert answer["position"] == picture.changes.position


async def test_more_commits_than_a_listener_may_miss_and_the_buurt_is_read_afresh(
    tmp_path: Path,
) -> None:
    counting = CountingStore(tmp_path / "views.sqlite")
    picture = Picture(counting)
    picture.app.receive([("woonzorg", signal("wz-0", key="place-0"))])
    await picture.project()
    await picture.fast(WOONZORG)
    # Each signal its own commit, more of them than the announcements queue holds.
    for n in range(QUEUE_LIMIT + 10):
        picture.app.receive([("stadgenoot", signal(f"sg-{n}", key=f"place-{n % 40}"))])
    await picture.project(commit_every=1)
    assert await picture.fast(WOONZORG) == await picture.plain(WOONZORG)
    assert counting.read["issues"] == 3  # ours at first, ours afresh, the plain one


class CountingStore(SQLiteViewStore):
    """SQLite views that count the reads of the readers' side."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read: dict[str, int] = {}

    def issues(self, *args: Any, **kwargs: Any) -> Any:
        self.read["issues"] = self.read.get("issues", 0) + 1
        return super().issues(*args, **kwargs)

    def issue(self, *args: Any, **kwargs: Any) -> Any:
        self.read["issue"] = self.read.get("issue", 0) + 1
        return super().issue(*args, **kwargs)


async def test_a_kept_answer_is_given_again_until_its_buurt_changes_with_the_latest_position(
    tmp_path: Path,
) -> None:
    picture = Picture(SQLiteViewStore(tmp_path / "views.sqlite"), answers_max_age=60.0)
    picture.app.receive([("woonzorg", signal(f"wz-{n}", key=f"place-{n}")) for n in range(5)])
    await picture.project()
    first = msgspec.json.decode(await picture.fast(WOONZORG))

    # A commit elsewhere: the same answer (its asOf too), at the new position.
    picture.app.receive([("woonzorg", signal("elsewhere", buurt=OTHER_BUURT))])
    await picture.project()
    again = msgspec.json.decode(await picture.fast(WOONZORG))
    assert again["position"] == picture.changes.position > first["position"]
    assert {**again, "position": None} == {**first, "position": None}
    # Given again, it came in gzip; without gzip accepted, as JSON.
    assert (await picture.answers.answer(WOONZORG, BUURT, gzip=True)).gzipped
    plain = await picture.answers.answer(WOONZORG, BUURT)
    assert not plain.gzipped and msgspec.json.decode(plain.body) == again

    # A commit here: written afresh, as of now.
    picture.app.handle("stadgenoot", "claim", Claim(issue_id=first["issues"][0]["id"]))
    await picture.project()
    assert await picture.fast(WOONZORG) == await picture.plain(WOONZORG)
    # Another reader's question is its own.
    assert await picture.fast(STADGENOOT) == await picture.plain(STADGENOOT)
