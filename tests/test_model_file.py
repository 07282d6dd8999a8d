"""fastlr.model_file: the pickle-free, versioned model format."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from fastlr import LogisticRegression
from fastlr import model_file as mf
from fastlr.model_file import FORMAT_NAME, FORMAT_VERSION, ModelFileError, load_model, save_model

MEMBERS = ["coef.npy", "intercept.npy", "classes.npy", "loss_curve.npy", "metadata.npy"]


def make_data(n_classes, labels="int", seed=0, n=60, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, n_classes, size=n)
    X[:, 0] += y  # learnable
    if labels == "str":
        y = np.array(["apple", "banana", "cherry", "date"])[y]
    return X, y


@pytest.fixture(scope="module")
def binary_model():
    X, y = make_data(2)
    return LogisticRegression(C=0.5).fit(X, y), X


@pytest.fixture
def saved(tmp_path, binary_model):
    path = tmp_path / "model.npz"
    save_model(binary_model[0], path)
    return path


def members(path):
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def write_members(path, arrays):
    np.savez(path, **arrays)


def rewrite(src, dst, meta_update=None, **arrays):
    """Copy a model file, updating metadata keys and replacing arrays."""
    data = members(src)
    if meta_update is not None:
        meta = json.loads(str(data["metadata"]))
        meta.update(meta_update)
        data["metadata"] = np.array(json.dumps(meta))
    data.update(arrays)
    write_members(dst, data)
    return dst


def load_error(path):
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert os.path.basename(str(path)) in message
    return message


# -- round trips ------------------------------------------------------------------------------


def assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    np.testing.assert_array_equal(a.classes_, b.classes_)
    assert a.classes_.dtype == b.classes_.dtype
    assert a.n_features_in_ == b.n_features_in_
    assert a.n_iter_ == b.n_iter_
    assert a.loss_curve_ == b.loss_curve_
    assert a.backend_ == b.backend_
    assert a.get_params() == b.get_params()


def test_binary_int_labels_round_trip(tmp_path, binary_model):
    model, X = binary_model
    path = tmp_path / "m.npz"
    save_model(model, path)
    assert_same_model(model, load_model(path), X)


def test_multiclass_string_labels_round_trip(tmp_path):
    X, y = make_data(4, labels="str")
    model = LogisticRegression(max_iter=200).fit(X, y)
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert_same_model(model, loaded, X)
    assert members(path)["classes"].dtype.kind == "U"


def test_object_string_labels_round_trip(tmp_path):
    X, y = make_data(3, labels="str")
    model = LogisticRegression().fit(X, y.astype(object))
    assert model.classes_.dtype == object
    path = tmp_path / "m.npz"
    save_model(model, path)
    assert members(path)["classes"].dtype.kind == "U"
    assert_same_model(model, load_model(path), X)


def test_no_intercept_round_trip(tmp_path):
    X, y = make_data(3)
    model = LogisticRegression(fit_intercept=False, solver="gd", learning_rate="backtracking").fit(X, y)
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.fit_intercept is False
    assert_same_model(model, loaded, X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_numpy_backend_and_params_round_trip(tmp_path):
    X, y = make_data(2)
    model = LogisticRegression(backend="numpy", class_weight={0: 2.0, 1: 0.5}, tol=None, max_iter=5,
                               random_state=3).fit(X, y)
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.backend_ == "numpy"
    assert loaded.class_weight == {0: 2.0, 1: 0.5}
    assert_same_model(model, loaded, X)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), {0: 1.5, "b": 2}, None, True, 3, 0.25, "x"],
                         ids=["inf", "-inf", "dict", "None", "bool", "int", "float", "str"])
def test_param_encoding_round_trips_through_json(value):
    encoded = json.loads(json.dumps(mf._json_value(value), allow_nan=False))
    assert mf._from_json_value(encoded) == value


def test_nan_param_encoding():
    encoded = json.loads(json.dumps(mf._json_value(float("nan")), allow_nan=False))
    assert np.isnan(mf._from_json_value(encoded))


def test_unsavable_param_is_listed_and_defaulted(tmp_path):
    X, y = make_data(2)
    model = LogisticRegression(random_state=np.random.RandomState(0)).fit(X, y)
    path = tmp_path / "m.npz"
    save_model(model, path)
    meta = json.loads(str(members(path)["metadata"]))
    assert meta["params_not_saved"] == ["random_state"]
    assert load_model(path).random_state is None


def test_loaded_model_can_keep_training(tmp_path, binary_model):
    model, X = binary_model
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    y = model.predict(X)
    loaded.partial_fit(X, y)
    loaded.set_params(warm_start=True).fit(X, y)


def test_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = make_data(2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(frame, y)
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_training_data_round_trip(tmp_path, binary_model, saved):
    """The label column's name is optional metadata: saved when given, None when not."""
    path = tmp_path / "t.npz"
    save_model(binary_model[0], path, target_name="label", index_base=1)
    model, data = mf.load_model_and_data(path)
    assert data == mf.TrainingData("label", 1) and isinstance(model, LogisticRegression)
    assert mf.load_model_and_data(saved)[1] == mf.TrainingData(None, None)
    assert "'target_name' must be a string" in load_error(
        rewrite(path, tmp_path / "bad.npz", meta_update={"target_name": 3}))
    for bad in (2, True, "0"):
        assert "'index_base' must be 0 or 1" in load_error(
            rewrite(path, tmp_path / "bad.npz", meta_update={"index_base": bad}))


def test_path_is_used_as_given(tmp_path, binary_model):
    path = tmp_path / "model.fastlr"
    save_model(binary_model[0], path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fastlr"]
    load_model(str(path))


# -- the format -------------------------------------------------------------------------------


def test_members_are_exactly_as_documented(saved):
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == sorted(MEMBERS)
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    for name in MEMBERS:
        assert f"``{name}``" in mf.__doc__


def test_every_member_loads_without_pickle(saved):
    data = members(saved)
    for name, arr in data.items():
        assert not arr.dtype.hasobject, name
    assert data["coef"].dtype == np.float64 and data["coef"].shape == (1, 4)
    assert data["intercept"].shape == (1,)
    assert data["classes"].tolist() == [0, 1]


def test_metadata_contents(saved, binary_model):
    meta = json.loads(str(members(saved)["metadata"]))
    assert meta["format"] == FORMAT_NAME == "fastlr-model"
    assert meta["format_version"] == FORMAT_VERSION == 1
    assert meta["fastlr_version"]
    assert meta["params"]["C"] == 0.5
    assert set(meta["params"]) == set(binary_model[0].get_params())
    assert meta["n_features_in"] == 4
    assert meta["backend"] == "cpu"
    assert meta["classes_dtype"] == binary_model[0].classes_.dtype.str


def test_save_unfitted_model_is_an_error(tmp_path):
    with pytest.raises(ModelFileError, match="unfitted"):
        save_model(LogisticRegression(), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_other_object_is_a_type_error(tmp_path):
    with pytest.raises(TypeError):
        save_model(object(), tmp_path / "m.npz")


def test_estimator_still_pickles(binary_model):
    model, X = binary_model
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


# -- bad files --------------------------------------------------------------------------------


def test_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_missing_file(tmp_path):
    assert "no such file" in load_error(tmp_path / "nope.npz")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99], ids=lambda f: f"cut-at-{f:.0%}")
def test_truncated_file(tmp_path, saved, fraction):
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:int(len(data) * fraction)])
    load_error(cut)


@pytest.mark.parametrize("offset", [-200, -50, -1], ids=lambda o: f"cut-{-o}-bytes-before-end")
def test_truncated_near_the_end(tmp_path, saved, offset):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved.read_bytes()[:offset])
    load_error(cut)


def test_corrupted_member_data(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("coef.npy")
    pos = info.header_offset + 30 + len(info.filename) + info.file_size - 3  # inside coef's data
    data[pos] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    assert "corrupt" in load_error(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(seed).bytes(2000))
    assert "not a fastlr model file" in load_error(path)


def test_random_bytes_after_zip_magic(tmp_path):
    path = tmp_path / "random.npz"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(5).bytes(500))
    load_error(path)


def test_plain_npy_file(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))  # a .npy under an .npz name
    assert "not a fastlr model file" in load_error(path)


def test_npz_without_metadata(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.ones((2, 2)), y=np.ones(2))
    assert "not a fastlr model file" in load_error(path)


def test_wrong_format_name(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", meta_update={"format": "someone-else"})
    assert "not a fastlr model file" in load_error(bad)


def test_metadata_not_json(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", metadata=np.array("{not json"))
    assert "JSON" in load_error(bad)


def test_metadata_not_a_string(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", metadata=np.zeros(3))
    assert "metadata" in load_error(bad)


def test_future_format_version(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", meta_update={"format_version": 2})
    assert "written by a newer fastlr (format 2); this fastlr reads format 1" in load_error(bad)


@pytest.mark.parametrize("version", [0, "1", 1.5, None])
def test_invalid_format_version(tmp_path, saved, version):
    bad = rewrite(saved, tmp_path / "bad.npz", meta_update={"format_version": version})
    assert "format_version" in load_error(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"coef": np.zeros((2, 4))},  # 2 classes need 1 row
        {"coef": np.zeros(4)},  # not 2-D
        {"intercept": np.zeros(2)},
        {"classes": np.array([0, 1, 2])},  # 3 classes need 3 rows
        {"classes": np.array([0])},
        {"classes": np.array([1, 0])},  # not sorted
        {"loss_curve": np.zeros((2, 2))},
        {"coef": np.zeros((1, 4), dtype=np.int64)},
    ],
    ids=["coef-rows", "coef-1d", "intercept-len", "classes-count", "one-class", "classes-unsorted",
         "loss-curve-2d", "coef-int"],
)
def test_inconsistent_arrays(tmp_path, saved, change):
    load_error(rewrite(saved, tmp_path / "bad.npz", **change))


def test_n_features_mismatch(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", meta_update={"n_features_in": 5})
    assert "n_features_in" in load_error(bad)


def test_missing_member(tmp_path, saved):
    data = members(saved)
    del data["intercept"]
    write_members(tmp_path / "bad.npz", data)
    assert "intercept" in load_error(tmp_path / "bad.npz")


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_coef(tmp_path, saved, value):
    coef = members(saved)["coef"].copy()
    coef[0, 1] = value
    assert "NaN or infinity" in load_error(rewrite(saved, tmp_path / "bad.npz", coef=coef))


def test_non_finite_intercept(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", intercept=np.array([np.nan]))
    assert "NaN or infinity" in load_error(bad)


def test_bad_params(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.npz", meta_update={"params": {"C": {"__evil__": 1}}})
    assert "params" in load_error(bad)


def npy_bytes_with_header(shape, descr="<f8", payload=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def zip_with(src, tmp_path, **raw_members):
    """Copy a model file's members, replacing some with raw .npy bytes."""
    dst = tmp_path / "crafted.npz"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            key = name[:-4]
            zout.writestr(name, raw_members[key] if key in raw_members else zin.read(name))
    return dst


def test_oversized_declared_array(tmp_path, saved):
    crafted = zip_with(saved, tmp_path, coef=npy_bytes_with_header((200_000, 200_000)))
    message = load_error(crafted)
    assert "coef.npy" in message and "limit" in message


def test_oversized_metadata(tmp_path, saved):
    crafted = zip_with(saved, tmp_path, metadata=npy_bytes_with_header((), descr="<U300000"))
    message = load_error(crafted)
    assert "metadata.npy" in message and "limit" in message


def test_object_array_member_is_refused(tmp_path, saved):
    payload = pickle.dumps(np.array([1, 2], dtype=object))
    crafted = zip_with(saved, tmp_path, classes=npy_bytes_with_header((2,), descr="|O", payload=payload))
    assert "objects" in load_error(crafted)


def test_garbage_npy_header(tmp_path, saved):
    crafted = zip_with(saved, tmp_path, coef=b"\x93NUMPY\x01\x00garbage")
    assert "coef.npy" in load_error(crafted)


def test_directory(tmp_path):
    load_error(tmp_path)


# -- atomic saving ----------------------------------------------------------------------------


def test_save_replaces_existing_file(tmp_path, binary_model):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    save_model(binary_model[0], path)
    load_model(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.parametrize("target", ["savez", "replace", "fsync"])
def test_failed_save_leaves_existing_file_untouched(tmp_path, monkeypatch, binary_model, target):
    model, _ = binary_model
    path = tmp_path / "m.npz"
    other = LogisticRegression(C=3.0).fit(*make_data(2, seed=4))
    save_model(other, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    if target == "savez":
        monkeypatch.setattr(mf.np, "savez", boom)
    else:
        monkeypatch.setattr(mf.os, target, boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        save_model(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    assert load_model(path).C == 3.0


def test_os_error_during_save_is_a_model_file_error(tmp_path, monkeypatch, binary_model):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mf.os, "replace", disk_full)
    with pytest.raises(ModelFileError, match="No space left"):
        save_model(binary_model[0], tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_directory(tmp_path, binary_model):
    with pytest.raises(ModelFileError, match="cannot write"):
        save_model(binary_model[0], tmp_path / "no" / "m.npz")
