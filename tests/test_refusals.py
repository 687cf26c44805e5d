"""Chapter 08's table of bad-input cases: each case is refused by the package with a message naming the rule."""
from specvit_core.refusals import CASES, refusal_table
from specvit_core.simulate import generate_dataset


def test_every_bad_input_case_is_refused_with_its_rule(small_simulation, small_grid, tmp_path):
    dataset = tmp_path / "data"
    generate_dataset(dataset, small_simulation, small_grid, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in dataset.iterdir()}
    table = refusal_table(dataset, small_grid)
    assert len(table) == len(CASES) + 1
    assert "accepted" not in set(table.exception), table[table.exception == "accepted"].index.tolist()
    assert table.loc["stale shard of an earlier generation", "message"].count("train_999.h5") >= 1
    assert "error must be > 0 and not NaN" in table.loc["zero errors in one spectrum", "message"]
    assert "positive median" in table.loc["negated flux", "message"]
    assert table.loc["test split read during training", "exception"] == "RuntimeError"
    assert "<dataset>" in table.loc["NaN label", "message"] and "/tmp" not in table.loc["NaN label", "message"]
    assert "SHA-256" in table.loc["file changed after it was written", "message"]
    assert {p.name: p.stat().st_mtime_ns for p in dataset.iterdir()} == before  # the dataset itself is never changed
