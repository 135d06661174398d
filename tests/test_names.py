import pytest

from idia.names import (
    candidate_pool,
    faker_name_lists,
    name_key,
    read_name_list,
    world_names,
)


def test_world_names_unique_balanced_and_awkward():
    names = world_names(120, seed=3)
    assert len(names) == 120
    keys = [name_key(n) for n, _ in names]
    assert len(set(keys)) == 120
    # no name is contained in another (caption counts would be ambiguous)
    assert not any(a != b and a in b for a in keys for b in keys)
    genders = [g for _, g in names]
    assert genders.count("female") == genders.count("male") == 60
    full = [n for n, _ in names]
    assert any(not n.isascii() for n in full)
    assert any("'" in n for n in full)
    assert any("-" in n for n in full)
    assert all(len(n.split(" ")) == 2 for n in full)


def test_world_names_deterministic_and_seeded():
    assert world_names(30, seed=1) == world_names(30, seed=1)
    assert world_names(30, seed=1) != world_names(30, seed=2)


def test_name_key_ignores_case_and_accents():
    assert name_key("Zoé  Müller") == name_key("zoe muller")


def test_candidate_pool_keeps_study_names_first_and_is_unique():
    female, male, last = faker_name_lists("en_US")
    study = ["Zoé Müller", "Conan O'Brien", "Anna-Lena Schmidt"]
    pool = candidate_pool(study, 300, seed=0, first_female=female, first_male=male, surnames=last)
    assert pool[:3] == study
    assert len(pool) == 300
    assert len({name_key(n) for n in pool}) == 300
    firsts = [n.split(" ")[0] for n in pool[3:]]
    n_female = sum(f in set(female) for f in firsts)
    assert abs(n_female - len(firsts) / 2) <= len(firsts) * 0.1
    assert pool == candidate_pool(
        study, 300, seed=0, first_female=female, first_male=male, surnames=last
    )


def test_candidate_pool_fillers_avoid_accent_variants_of_study_names():
    pool = candidate_pool(["Zoé Muller"], 4, 0, ["Zoe", "Ann"], ["Bob"], ["Müller", "Lee"])
    assert "Zoe Müller" not in pool
    assert len({name_key(n) for n in pool}) == 4


def test_candidate_pool_errors():
    female, male, last = faker_name_lists()
    with pytest.raises(ValueError, match="Zoe Muller"):
        candidate_pool(["Zoé Müller", "Zoe Muller"], 10, 0, female, male, last)
    with pytest.raises(ValueError, match="smaller"):
        candidate_pool(["A B", "C D"], 1, 0, female, male, last)
    with pytest.raises(ValueError, match="distinct"):
        candidate_pool([], 10, 0, ["Ann"], ["Bob"], ["Lee"])


def test_read_name_list(tmp_path):
    txt = tmp_path / "names.txt"
    txt.write_text("name\n Mary \n\nJohn\n")
    assert read_name_list(txt) == ["Mary", "John"]
    csv = tmp_path / "names.csv"
    csv.write_text("name,count\nSmith,100\nO'Brien,5\n")
    assert read_name_list(csv) == ["Smith", "O'Brien"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.txt"):
        read_name_list(empty)
    with pytest.raises(ValueError, match="missing.txt"):
        read_name_list(tmp_path / "missing.txt")
