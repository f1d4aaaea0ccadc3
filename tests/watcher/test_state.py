"""The pure watcher state machine: transitions, the kube-rs bugs it fixes, and a model check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.errors import ApiError, TransportError, WatchTimeout
from kube_runtime.watcher.event import (
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    NoResourceVersion,
    WatchError,
    WatchFailed,
    WatchStartFailed,
)
from kube_runtime.watcher.state import (
    Empty,
    InitFullList,
    InitialWatch,
    InitListed,
    InitPage,
    Listed,
    ListFailed,
    ListPage,
    Outcome,
    ReadWatch,
    Received,
    StartWatch,
    State,
    StreamBroken,
    StreamDecodeFailed,
    StreamEnded,
    StreamErrorEvent,
    Watching,
    WatchOpened,
    WatchRejected,
    has_open_watch,
    next_call,
    step,
)


def cm(name: str, rv: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"metadata": meta}


def page(names: list[str], rv: str | None, cont: str | None = None) -> Listed:
    meta: dict[str, Any] = {}
    if rv is not None:
        meta["resourceVersion"] = rv
    if cont is not None:
        meta["continue"] = cont
    return Listed(
        {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta, "items": [cm(n, "1") for n in names]}
    )


def gone() -> ApiError:
    return ApiError({"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})


def server_error() -> ApiError:
    return ApiError({"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"})


def refused() -> ApiError:
    """kube-apiserver's answer to a streaming-list watch with its WatchList gate off."""
    message = "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
    return ApiError(
        {
            "kind": "Status",
            "code": 422,
            "reason": "Invalid",
            "message": f'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: {message}',
            "details": {
                "kind": "ListOptions",
                "group": "meta.k8s.io",
                "causes": [
                    {
                        "reason": "FieldValueForbidden",
                        "message": f"Forbidden: {message}",
                        "field": "sendInitialEvents",
                    }
                ],
            },
        }
    )


def bookmark(rv: str, *, initial_end: bool = False) -> Received:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return Received("BOOKMARK", {"metadata": meta})


# -- list-then-watch ----------------------------------------------------------------------------


def test_paged_list_brackets_objects_then_watches_from_list_version() -> None:
    state: State = Empty()
    assert next_call(state, streaming=False) == ListPage(None)
    s = step(state, page(["a", "b"], "10", cont="tok"))
    assert [type(i) for i in s.items] == [Init, InitApply, InitApply]
    assert s.state == InitPage("tok", "10")
    assert next_call(s.state, streaming=False) == ListPage("tok")
    s = step(s.state, page(["c"], "10"))
    assert [type(i) for i in s.items] == [InitApply, InitDone]
    assert s.state == InitListed("10")
    assert next_call(s.state, streaming=False) == StartWatch("10", initial=False)
    s = step(s.state, WatchOpened())
    assert s.state == Watching("10")
    assert s.items == ()
    assert next_call(s.state, streaming=False) == ReadWatch()


def test_list_items_get_kind_and_api_version_from_the_list() -> None:
    s = step(Empty(), page(["a"], "3"))
    obj = s.items[1].object  # type: ignore[union-attr]
    assert obj["kind"] == "ConfigMap"
    assert obj["apiVersion"] == "v1"


def test_failed_page_restarts_the_list_with_a_new_init() -> None:
    s = step(InitPage("tok", "10"), ListFailed(server_error()))
    assert s.state == Empty()
    assert isinstance(s.items[0], InitialListFailed)
    s = step(s.state, page(["a"], "11"))
    assert isinstance(s.items[0], Init)


def test_an_expired_continue_token_falls_back_to_one_full_list() -> None:
    """The paged list restarted from scratch on a page whose continue token expired (410), so it
    never finished while compaction came faster than a full paged list. Now (client-go's pager,
    FullListIfExpired) the next call lists everything without limit or continue: the pages so far
    are discarded by a new Init, and that one list completes the initial list."""
    s = step(Empty(), page(["a", "b"], "10", cont="t1"))
    s = step(s.state, page(["c"], None, cont="t2"))
    assert s.state == InitPage("t2", "10")
    s = step(s.state, ListFailed(gone()))
    assert s.state == InitFullList()
    assert [type(i) for i in s.items] == [Init]  # no error value: nothing to back off from
    assert next_call(s.state, streaming=False) == ListPage(None, full=True)
    s = step(s.state, page(["a", "b", "c", "d"], "17"))
    assert [type(i) for i in s.items] == [InitApply] * 4 + [InitDone]
    assert [i.object["metadata"]["name"] for i in s.items[:4]] == ["a", "b", "c", "d"]  # type: ignore[union-attr]
    assert s.state == InitListed("17")


def test_a_gone_first_page_or_a_failing_full_list_restarts_as_before() -> None:
    # Only a page requested with a continue token falls back.
    s = step(Empty(), ListFailed(gone()))
    assert s.state == Empty()
    assert [type(i) for i in s.items] == [InitialListFailed]
    # Other failures of a later page restart the paged list.
    s = step(InitPage("t", "10"), ListFailed(TransportError("reset")))
    assert s.state == Empty()
    # The full list failing is a failed list: start over (paged) with an error value.
    for error in (gone(), server_error()):
        s = step(InitFullList(), ListFailed(error))
        assert s.state == Empty()
        assert [type(i) for i in s.items] == [InitialListFailed]
    assert next_call(s.state, streaming=False) == ListPage(None)


def test_list_without_version_or_continue_is_an_error() -> None:
    s = step(Empty(), page(["a"], None))
    assert s.state == Empty()
    assert isinstance(s.items[0], NoResourceVersion)


def test_empty_strings_count_as_absent() -> None:
    s = step(Empty(), Listed({"metadata": {"continue": "", "resourceVersion": "5"}, "items": []}))
    assert s.state == InitListed("5")
    assert [type(i) for i in s.items] == [Init, InitDone]


def test_watch_events_track_the_last_version() -> None:
    state: State = Watching("10")
    s = step(state, Received("ADDED", cm("a", "11")))
    assert isinstance(s.items[0], Apply)
    assert s.state == Watching("11")
    s = step(s.state, Received("MODIFIED", cm("a", "12")))
    assert isinstance(s.items[0], Apply)
    assert s.state == Watching("12")
    s = step(s.state, Received("DELETED", cm("a", "13")))
    assert isinstance(s.items[0], Delete)
    assert s.state == Watching("13")
    s = step(s.state, bookmark("20"))
    assert s.items == ()
    assert s.state == Watching("20")


def test_normal_end_and_idle_timeout_resume_without_relisting() -> None:
    for outcome in (StreamEnded(), StreamEnded(idle=True)):
        s = step(Watching("42"), outcome)
        assert s.state == InitListed("42")
        assert s.items == ()
        assert next_call(s.state, streaming=False) == StartWatch("42", initial=False)


def test_broken_connection_resumes_from_last_version() -> None:
    s = step(Watching("42"), StreamBroken(TransportError("reset")))
    assert s.state == InitListed("42")
    assert isinstance(s.items[0], WatchFailed)


def test_error_410_in_stream_relists() -> None:
    s = step(Watching("42"), StreamErrorEvent(gone()))
    assert s.state == Empty()
    assert isinstance(s.items[0], WatchError)
    assert s.items[0].code == 410


def test_other_error_event_keeps_watching() -> None:
    s = step(Watching("42"), StreamErrorEvent(server_error()))
    assert s.state == Watching("42")
    assert isinstance(s.items[0], WatchError)


def test_a_decode_error_reopens_the_watch_once_to_read_the_line_again() -> None:
    """kube-rs reads on past a line that failed to decode, and its event is lost once a later
    event moves the version past it. Here the watch reopens from the last good version; failing
    again before the version moves, the line is skipped (no stall on a permanently bad object)."""
    s = step(Watching("42"), StreamDecodeFailed(ValueError("bad line")))
    assert s.state == InitListed("42", refetch=True)
    assert isinstance(s.items[0], WatchFailed)
    assert next_call(s.state, streaming=False) == StartWatch("42", initial=False)
    s = step(s.state, WatchOpened())
    assert s.state == Watching("42", refetch=True)
    s = step(s.state, StreamDecodeFailed(ValueError("bad line")))
    assert s.state == Watching("42", refetch=True)  # the same line again: skipped, stream kept
    assert isinstance(s.items[0], WatchFailed)
    s = step(s.state, Received("MODIFIED", cm("a", "43")))
    assert s.state == Watching("43")  # the version moved: the next bad line is read again
    s = step(s.state, StreamDecodeFailed(ValueError("another")))
    assert s.state == InitListed("43", refetch=True)


def test_a_decode_error_in_a_streaming_list_starts_the_list_over_once() -> None:
    """The failed line's object would be missing from the list swapped into the store. The list
    starts over (a fresh Init); a line failing in that second list is skipped, not listed again."""
    s = step(InitialWatch(), StreamDecodeFailed(ValueError("bad line")))
    assert s.state == Empty(refetch=True)
    assert isinstance(s.items[0], WatchFailed)
    assert next_call(s.state, streaming=True) == StartWatch(None, initial=True)
    s = step(s.state, WatchOpened())
    assert s.state == InitialWatch(refetch=True)
    assert [type(i) for i in s.items] == [Init]
    s = step(s.state, Received("ADDED", cm("a", "2")))
    assert s.state == InitialWatch(refetch=True)
    s = step(s.state, StreamDecodeFailed(ValueError("bad line")))
    assert s.state == InitialWatch(refetch=True)  # skipped: the list goes on
    assert isinstance(s.items[0], WatchFailed)
    s = step(s.state, bookmark("9", initial_end=True))
    assert s.state == Watching("9")
    assert [type(i) for i in s.items] == [InitDone]
    s = step(InitialWatch(refetch=True), StreamBroken(TransportError("reset")))
    assert s.state == Empty()  # a list broken off starts afresh


def test_watch_start_410_relists_instead_of_retrying_the_stale_version() -> None:
    """kube-rs bug: an HTTP 410 when (re)starting the watch left it in InitListed with the same
    expired resourceVersion, retrying it forever."""
    s = step(InitListed("7"), WatchRejected(gone()))
    assert s.state == Empty()
    assert isinstance(s.items[0], WatchStartFailed)
    assert next_call(s.state, streaming=False) == ListPage(None)


def test_other_watch_start_failures_retry_the_same_version() -> None:
    for error in (server_error(), TransportError("refused")):
        s = step(InitListed("7"), WatchRejected(error))
        assert s.state == InitListed("7")
        assert isinstance(s.items[0], WatchStartFailed)


def test_object_without_version_forces_relist() -> None:
    s = step(Watching("5"), Received("ADDED", cm("a", None)))
    assert s.state == Empty()
    assert isinstance(s.items[0], NoResourceVersion)


def test_unknown_event_type_is_an_error_value() -> None:
    s = step(Watching("5"), Received("WHAT", cm("a", "6")))
    assert s.state == Watching("5")
    assert isinstance(s.items[0], WatchFailed)


# -- streaming list -----------------------------------------------------------------------------


def test_streaming_list_emits_init_kube_rs_streaming_list_init_bug() -> None:
    """kube-rs bug: streaming-list mode never emitted Init, so a store kept InitApply objects of an
    aborted initial stream in its buffer. We emit Init as soon as the initial watch opens."""
    state: State = Empty()
    assert next_call(state, streaming=True) == StartWatch(None, initial=True)
    s = step(state, WatchOpened())
    assert s.state == InitialWatch()
    assert [type(i) for i in s.items] == [Init]
    s = step(s.state, Received("ADDED", cm("a", "3")))
    assert isinstance(s.items[0], InitApply)
    s = step(s.state, Received("DELETED", cm("a", "5")))
    assert s.state == InitialWatch()
    assert s.items == ()
    s = step(s.state, bookmark("9", initial_end=True))
    assert s.state == Watching("9")
    assert [type(i) for i in s.items] == [InitDone]


def test_streaming_list_aborted_restarts_with_a_fresh_init() -> None:
    s = step(InitialWatch(), StreamBroken(TransportError("x")))
    assert s.state == Empty()
    assert not s.streaming_unsupported
    assert next_call(s.state, streaming=True) == StartWatch(None, initial=True)
    s = step(s.state, WatchOpened())
    assert [type(i) for i in s.items] == [Init]
    s = step(InitialWatch(), StreamErrorEvent(gone()))
    assert s.state == Empty()
    assert not s.streaming_unsupported


def test_streaming_start_failure_stays_empty() -> None:
    s = step(Empty(), WatchRejected(server_error()))
    assert s.state == Empty()
    assert isinstance(s.items[0], WatchStartFailed)


def test_open_watch_states() -> None:
    assert has_open_watch(Watching("1"))
    assert has_open_watch(InitialWatch())
    assert not any(has_open_watch(s) for s in (Empty(), InitPage("t", None), InitListed("1")))


# -- property test: the step function against an independent model --------------------------------


@dataclass
class Model:
    """A reference model written as straight-line rules, independent of the step function's layout.

    ``phase`` is one of: relist, paging, full (listing everything after an expired continue
    token), initial, resume, watching.
    """

    streaming: bool  # false from the fallback on: the server does not serve streaming lists
    phase: str = "relist"
    rv: str | None = None
    token: str | None = None
    in_list: bool = False  # an Init was emitted and its InitDone not yet
    refetch: bool = False  # the watch (re)opened to read a line that failed to decode again

    def expected_action(self) -> Any:
        if self.phase == "relist":
            return StartWatch(None, initial=True) if self.streaming else ListPage(None)
        if self.phase == "paging":
            return ListPage(self.token)
        if self.phase == "full":
            return ListPage(None, full=True)
        if self.phase == "resume":
            return StartWatch(self.rv, initial=False)
        return ReadWatch()


_NAMES = st.sampled_from(["a", "b", "c"])
_RVS = st.integers(1, 99).map(str)
_ERRORS = st.sampled_from(["gone", "500", "transport", "refused"]).map(
    lambda k: {"gone": gone, "500": server_error, "refused": refused}.get(
        k, lambda: TransportError("reset")
    )()
)
_LIST_OUTCOMES: st.SearchStrategy[Outcome] = st.builds(
    page, st.lists(_NAMES, max_size=3), st.none() | _RVS, st.none() | st.sampled_from(["t1", "t2"])
) | st.builds(ListFailed, _ERRORS)
_START_OUTCOMES: st.SearchStrategy[Outcome] = st.just(WatchOpened()) | st.builds(WatchRejected, _ERRORS)
_READ_OUTCOMES: st.SearchStrategy[Outcome] = st.one_of(
    st.builds(
        lambda t, n, rv: Received(t, cm(n, rv)),
        st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
        _NAMES,
        _RVS | st.none(),
    ),
    st.builds(lambda rv, end: bookmark(rv, initial_end=end), _RVS, st.booleans()),
    st.builds(
        StreamErrorEvent,
        st.sampled_from(["gone", "500", "refused"]).map(
            lambda k: gone() if k == "gone" else server_error() if k == "500" else refused()
        ),
    ),
    st.builds(lambda: StreamBroken(TransportError("reset"))),
    st.builds(lambda: StreamBroken(WatchTimeout("silent", phase="idle", seconds=5.0))),
    st.builds(StreamEnded, st.booleans()),
    st.builds(lambda: StreamDecodeFailed(ValueError("bad"))),
)


def outcomes_for(action: Any) -> st.SearchStrategy[Outcome]:
    if isinstance(action, ListPage):
        return _LIST_OUTCOMES
    if isinstance(action, StartWatch):
        return _START_OUTCOMES
    return _READ_OUTCOMES


def unstreamable(m: Model) -> list[type]:
    """The fallback: paged lists from now on, starting afresh (the next list's Init), no error."""
    m.streaming, m.phase, m.in_list, m.refetch = False, "relist", False, False
    return []


def is_refused(error: BaseException) -> bool:
    return isinstance(error, ApiError) and error.code == 422


def model_step(m: Model, o: Outcome) -> list[type]:
    """Advance the model; returns the expected item types."""
    if isinstance(o, Listed):
        m.refetch = False  # a list's version starts a fresh watch
        meta = o.page["metadata"]
        cont, rv = (
            meta.get("continue") or None,
            meta.get("resourceVersion") or (m.rv if m.phase == "paging" else None),
        )
        first = m.phase == "relist"  # the full list's Init came with the fallback
        if cont is None and rv is None:
            m.phase, m.rv, m.in_list = "relist", None, False
            return [NoResourceVersion]
        out: list[type] = ([Init] if first else []) + [InitApply] * len(o.page["items"])
        m.in_list = True
        if cont:
            m.phase, m.token, m.rv = "paging", cont, rv
            return out
        m.phase, m.rv, m.in_list = "resume", rv, False
        return [*out, InitDone]
    if isinstance(o, ListFailed):
        if m.phase == "paging" and isinstance(o.error, ApiError) and o.error.code == 410:
            m.phase, m.in_list = "full", True
            return [Init]
        m.phase, m.in_list = "relist", False
        return [InitialListFailed]
    if isinstance(o, WatchOpened):
        if m.phase == "relist":
            m.phase, m.in_list = "initial", True
            return [Init]
        m.phase = "watching"
        return []
    if isinstance(o, WatchRejected):
        if m.phase == "relist" and is_refused(o.error):
            return unstreamable(m)
        if m.phase == "resume" and not (isinstance(o.error, ApiError) and o.error.code == 410):
            return [WatchStartFailed]
        m.phase, m.refetch = "relist", False
        return [WatchStartFailed]
    resume_phase = "relist" if m.phase == "initial" else "resume"
    if m.phase == "initial" and (
        isinstance(o, StreamEnded)
        or (isinstance(o, StreamBroken) and isinstance(o.error, WatchTimeout))
        or (isinstance(o, StreamErrorEvent) and is_refused(o.error))
        or (isinstance(o, Received) and o.type == "BOOKMARK" and not o.object["metadata"].get("annotations"))
    ):
        return unstreamable(m)  # the server ignored sendInitialEvents, or refused it
    if isinstance(o, StreamErrorEvent):
        if o.error.code == 410:
            m.phase, m.in_list, m.refetch = "relist", False, False
        return [WatchError]
    if isinstance(o, StreamDecodeFailed):
        if m.phase == "watching" and not m.refetch:
            m.phase, m.refetch = "resume", True
        elif m.phase == "initial" and not m.refetch:
            m.phase, m.in_list, m.refetch = "relist", False, True  # the streaming list starts over
        return [WatchFailed]
    if isinstance(o, StreamBroken):
        m.phase, m.refetch = resume_phase, False
        return [WatchFailed]
    if isinstance(o, StreamEnded):
        m.phase, m.refetch = resume_phase, False
        return []
    assert isinstance(o, Received)
    obj_rv = o.object["metadata"].get("resourceVersion")
    if m.phase == "initial":
        if o.type == "BOOKMARK" and o.object["metadata"].get("annotations"):
            m.phase, m.rv, m.in_list, m.refetch = "watching", obj_rv, False, False
            return [InitDone]
        return [InitApply] if o.type in ("ADDED", "MODIFIED") else []
    if o.type == "BOOKMARK":
        if obj_rv and obj_rv != m.rv:
            m.rv, m.refetch = obj_rv, False
        return []
    if not obj_rv:
        m.phase, m.in_list, m.refetch = "relist", False, False
        return [NoResourceVersion]
    if obj_rv != m.rv:
        m.rv, m.refetch = obj_rv, False
    return [Delete if o.type == "DELETED" else Apply]


@settings(max_examples=150, deadline=None)
@given(streaming=st.booleans(), data=st.data())
def test_step_function_matches_model(streaming: bool, data: st.DataObject) -> None:
    state: State = Empty()
    model = Model(streaming)
    open_list = False
    for _ in range(30):
        action = next_call(state, streaming=streaming)
        assert action == model.expected_action()
        outcome = data.draw(outcomes_for(action))
        s = step(state, outcome)
        assert [type(i) for i in s.items] == model_step(model, outcome), (state, outcome)
        # The driver's switch: once unsupported, never streaming again.
        assert s.streaming_unsupported == (streaming and not model.streaming), (state, outcome)
        streaming = streaming and not s.streaming_unsupported
        # Bracketing: Init opens a list, InitDone closes it, Apply/Delete only outside a list.
        for item in s.items:
            if isinstance(item, Init):
                open_list = True
            elif isinstance(item, InitApply):
                assert open_list
            elif isinstance(item, InitDone):
                assert open_list
                open_list = False
            elif isinstance(item, Apply | Delete):
                assert not open_list
        if isinstance(s.state, Empty):
            open_list = False  # an abandoned list: the next one starts with Init
        # The watch is resumed only from a version actually observed.
        if isinstance(s.state, InitListed | Watching):
            assert s.state.resource_version == model.rv
        state = s.state
