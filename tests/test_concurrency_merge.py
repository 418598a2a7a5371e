"""The per-key three-way merge (pyramid_session_multi.concurrency.merge)."""

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyramid_session_multi.concurrency.merge import MISSING, last_writer_wins, merge, same


def test_distinct_keys_written_by_both_sides_all_land():
    result = merge({"a": 1}, {"a": 1, "ours": 2}, {"a": 1, "theirs": 3})
    assert result.data == {"a": 1, "ours": 2, "theirs": 3}
    assert result.kept_theirs == ("theirs",)
    assert result.conflicts == ()


def test_a_key_deleted_in_parallel_stays_deleted():
    result = merge({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, {"a": 1})
    assert result.data == {"a": 1, "c": 3}
    assert result.kept_theirs == ("b",)


def test_a_key_this_request_deleted_stays_deleted():
    result = merge({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2, "c": 3})
    assert result.data == {"a": 1, "c": 3}


def test_a_parallel_change_of_a_key_left_alone_is_kept():
    result = merge({"a": 1}, {"a": 1}, {"a": 2})
    assert result.data == {"a": 2}
    assert result.kept_theirs == ("a",)


def test_same_key_changed_on_both_sides_the_last_writer_wins():
    result = merge({"a": 1}, {"a": 2}, {"a": 3})
    assert result.data == {"a": 2}
    assert result.conflicts == ("a",)


def test_same_change_on_both_sides_is_no_conflict():
    result = merge({"a": 1}, {"a": 2}, {"a": 2})
    assert result.data == {"a": 2}
    assert result.conflicts == ()


def test_on_conflict_receives_every_side_and_its_value_is_kept():
    calls = []

    def on_conflict(key, loaded, ours, theirs):
        calls.append((key, loaded, ours, theirs))
        return ours + theirs

    result = merge({"cart": ["a"]}, {"cart": ["a", "b"]}, {"cart": ["a", "c"]}, on_conflict)
    assert calls == [("cart", ["a"], ["a", "b"], ["a", "c"])]
    assert result.data == {"cart": ["a", "b", "a", "c"]}


def test_on_conflict_sees_missing_for_a_deleted_side_and_may_delete():
    calls = []

    def on_conflict(key, loaded, ours, theirs):
        calls.append((loaded, ours, theirs))
        return MISSING

    result = merge({"a": 1}, {"a": 2}, {}, on_conflict)
    assert calls == [(1, 2, MISSING)]
    assert result.data == {}


def test_a_key_new_on_both_sides_with_different_values_is_a_conflict():
    result = merge({}, {"a": 1}, {"a": 2})
    assert result.conflicts == ("a",)
    assert result.data == {"a": 1}


def test_values_whose_comparison_raises_count_as_changed():
    class Touchy:
        def __eq__(self, other):
            raise TypeError("no comparing")

        __hash__ = object.__hash__

    loaded, ours = Touchy(), Touchy()
    assert not same(loaded, ours)
    assert same(loaded, loaded)
    result = merge({"a": loaded}, {"a": ours}, {"a": loaded})
    assert result.data["a"] is ours


def test_own_keys_go_to_the_last_writer_unseen_by_on_conflict():
    def on_conflict(key, loaded, ours, theirs):
        raise AssertionError(f"on_conflict saw {key!r}")

    result = merge(
        {"_accessed_time": 1}, {"_accessed_time": 3}, {"_accessed_time": 2}, on_conflict,
        own_keys=frozenset({"_accessed_time"}),
    )  # fmt: skip
    assert result.data == {"_accessed_time": 3}
    assert result.conflicts == ()


def test_missing_survives_pickling_as_itself():
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert repr(MISSING) == "MISSING"


def test_last_writer_wins_keeps_ours():
    assert last_writer_wins("k", 1, 2, 3) == 2


# -- the property: the merge against a model of what each side did ---------

keys = st.sampled_from(["a", "b", "c", "d", "e"])
values = st.integers(min_value=0, max_value=3)
datas = st.dictionaries(keys, values)
# an edit: set a key, or delete it (None)
edits = st.dictionaries(keys, st.one_of(st.none(), values))


def applied(loaded, edit):
    data = dict(loaded)
    for key, value in edit.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@given(datas, edits, edits)
def test_merge_keeps_each_sides_edits_against_a_model(loaded, our_edit, their_edit):
    ours = applied(loaded, our_edit)
    theirs = applied(loaded, their_edit)
    result = merge(loaded, ours, theirs)
    for key in {*loaded, *ours, *theirs}:
        we_changed = ours.get(key, MISSING) != loaded.get(key, MISSING)
        they_changed = theirs.get(key, MISSING) != loaded.get(key, MISSING)
        # ours where this request changed it (alone, or as the last writer)
        expected = (ours if we_changed else theirs).get(key, MISSING)
        assert result.data.get(key, MISSING) == expected, key
        assert (key in result.conflicts) == (
            we_changed and they_changed and ours.get(key, MISSING) != theirs.get(key, MISSING)
        )


@given(datas, edits, edits)
def test_edits_of_distinct_keys_commute(loaded, our_edit, their_edit):
    their_edit = {key: value for key, value in their_edit.items() if key not in our_edit}
    ours = applied(loaded, our_edit)
    theirs = applied(loaded, their_edit)
    both = applied(applied(loaded, our_edit), their_edit)
    assert merge(loaded, ours, theirs).data == both
    assert merge(loaded, theirs, ours).data == both
    assert merge(loaded, ours, theirs).conflicts == ()


@given(datas, edits)
def test_a_side_that_changed_nothing_takes_the_other_whole(loaded, edit):
    changed = applied(loaded, edit)
    assert merge(loaded, loaded, changed).data == changed
    assert merge(loaded, changed, loaded).data == changed


@given(st.lists(edits, min_size=1, max_size=32), datas)
def test_parallel_writers_of_distinct_keys_all_land_saved_one_after_another(edits_, loaded):
    # every writer loaded the same data; each saves, merging into what the store holds
    writers = [
        {f"{index}-{key}": value for key, value in edit.items()}
        for index, edit in enumerate(edits_)
    ]
    store = dict(loaded)
    for edit in writers:
        store = merge(loaded, applied(loaded, edit), store).data
    expected = dict(loaded)
    for edit in writers:
        expected = applied(expected, edit)
    assert store == expected


@pytest.mark.parametrize("value", [0, "", [], {}, None, False])
def test_falsy_values_are_values_not_absence(value):
    result = merge({}, {"a": value}, {})
    assert result.data == {"a": value}


def test_a_concealed_record_goes_to_the_last_writer_and_the_value_riding_in_it_to_on_conflict():
    from pyramid_session_multi import hidden
    from pyramid_session_multi.concurrency.merge import Concealed, MergePolicy

    concealed = Concealed(
        frozenset({"_rec"}),
        lambda stored: hidden.split(stored, MISSING),
        lambda own, record: hidden.join(own, record, MISSING),
    )
    seen = []

    def on_conflict(key, loaded, ours, theirs):
        seen.append((key, loaded, ours, theirs))
        return ours + theirs

    policy = MergePolicy(on_conflict, frozenset({"_rec"}), concealed)
    loaded = {"_rec": [0]}
    ours = {"_rec": {"a": "x", "r": [1]}}
    theirs = {"_rec": {"a": "y", "r": [2]}}
    merged = policy.merge(loaded, ours, theirs)
    assert merged.data == {"_rec": {"a": "xy", "r": [1]}}
    assert seen == [("_rec", MISSING, "x", "y")]
    assert merged.conflicts == ("_rec",)
    # one side deleting the application's value, the other changing only the record
    merged = policy.merge(ours, {"_rec": [3]}, {"_rec": {"a": "x", "r": [4]}})
    assert merged.data == {"_rec": [3]}


def test_values_whose_comparison_answers_no_boolean_count_as_changed():
    class Vague:
        def __bool__(self):
            raise ValueError("neither true nor false")

    class Cell:
        def __eq__(self, other):
            return Vague()

        __hash__ = object.__hash__

    loaded, ours, theirs = Cell(), Cell(), Cell()
    result = merge({"a": loaded}, {"a": ours}, {"a": theirs})
    assert result.data["a"] is ours
    assert result.conflicts == ("a",)


def test_a_parallel_value_whose_comparison_answers_no_boolean_counts_as_changed():
    # this request left the key alone (a plain equality), the parallel save
    # holds a value whose comparison answers no boolean: taken as its change
    class Vague:
        def __bool__(self):
            raise ValueError("neither true nor false")

    class Cell:
        def __eq__(self, other):
            return Vague()

        __hash__ = object.__hash__

    theirs = Cell()
    result = merge({"a": 1}, {"a": 1}, {"a": theirs})
    assert result.data["a"] is theirs
    assert result.kept_theirs == ("a",)
