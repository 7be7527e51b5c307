"""The plugin runs reidkit's own dataset contract on itself, then trains a built-in method on it."""
from reidkit_csv_dataset import CSVDataset, same_camera

from reidkit.data.records import Sample
from reidkit.registry import DATASETS, EXCLUSIONS
from reidkit.testing import check_dataset


def test_the_plugin_is_registered():
    assert DATASETS.get("csv") is CSVDataset
    assert EXCLUSIONS.get("same-camera") is same_camera


def test_csv_dataset_meets_the_dataset_contract(tmp_path):
    dataset = check_dataset(CSVDataset, tmp_path)
    assert set(dataset.protocols) == {"rgb-to-ir", "ir-to-rgb"}
    assert dataset.colour_modality == "rgb" and dataset.roles["ir"] == "infrared"
    assert dataset.protocols["rgb-to-ir"].exclusion == "same-camera"
    other = check_dataset(CSVDataset, tmp_path / "b", args={"exclusion": "none"})
    assert other.protocols["rgb-to-ir"].exclusion == "none"


def test_same_camera_rule():
    query = [Sample("q.png", 1, 1, "rgb")]
    gallery = [Sample("a.png", 1, 1, "ir"), Sample("b.png", 1, 2, "ir"), Sample("c.png", 2, 1, "ir")]
    assert same_camera(query, gallery).tolist() == [[True, False, True]]


def test_chcr_trains_on_it(tmp_path):
    """CHCR needs a colour modality: it finds `rgb` through the role the dataset declares."""
    from reidkit.engine.run import resolve_run_config, run

    root = CSVDataset.write_example(tmp_path)
    cfg = resolve_run_config("chcr", overrides=[
        "data.dataset=csv", f"data.root={root}", "data.height=32", "data.width=16", "data.batch_size=4",
        "data.instances=2", "data.workers=0", "model.weights=none", "optim.epochs=1", "optim.iterations=1",
        f"output={tmp_path / 'run'}"])
    results = run(cfg, device="cpu")["results"]
    assert set(results) == {"rgb-to-ir", "ir-to-rgb"}
