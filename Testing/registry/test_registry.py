"""Model bundles and the registry: verified downloads from a real HTTP server on 127.0.0.1,
truncated and corrupted transfers, offline import, tampering, removal, and the CLI."""

import hashlib
import http.server
import json
import os
import threading
import zipfile

import pytest

from CrossModalitySynthLib.errors import CMSynthError, InputError
from CrossModalitySynthLib.registry import Registry, load_bundle, write_bundle_spec
from CrossModalitySynthLib.registry.download import DownloadError


def make_bundle(folder, model_id="demo-mr2ct", version="1.0.0", payload=b"weights" * 1000):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "weights.pt"), "wb") as f:
        f.write(payload)
    write_bundle_spec(str(folder), {
        "id": model_id, "version": version, "direction": "MR->CT",
        "inputs": [{"name": "t1_in", "modality": "MR", "sequence": "T1 in-phase"}],
        "output": {"modality": "CT", "unit": "HU", "range": [-1024, 3071]},
        "licence": "Apache-2.0", "description": "test bundle",
    })
    return folder


def zip_folder(folder, zip_path, prefix=""):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name in sorted(os.listdir(folder)):
            zf.write(os.path.join(folder, name), prefix + name)
    return zip_path


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (bytes, mode)
    hits = {}

    def do_GET(self):  # noqa: N802
        _Handler.hits[self.path] = _Handler.hits.get(self.path, 0) + 1
        if self.path not in self.files:
            self.send_error(404)
            return
        data, mode = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def released(tmp_path, server):
    """A bundle zip served three ways, and a registry listing it."""
    httpd, base = server
    _Handler.files.clear()
    _Handler.hits.clear()
    zip_path = zip_folder(make_bundle(tmp_path / "src"), str(tmp_path / "demo.zip"))
    data = open(zip_path, "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    for name, mode in (("good", "ok"), ("cut", "truncate"), ("bad", "corrupt")):
        _Handler.files[f"/{name}.zip"] = (data, mode)
    entries = []
    for name in ("good", "cut", "bad"):
        entries.append({"id": f"m-{name}", "version": "1.0.0", "direction": "MR->CT",
                        "inputs": ["T1 in-phase"], "url": f"{base}/{name}.zip", "sha256": sha,
                        "size": len(data), "licence": "Apache-2.0", "description": name})
    # the served zip's spec says id demo-mr2ct: register the good one under that id too
    entries.append({"id": "demo-mr2ct", "version": "1.0.0", "direction": "MR->CT", "inputs": ["T1 in-phase"],
                    "url": f"{base}/good.zip", "sha256": sha, "size": len(data)})
    reg_file = tmp_path / "Models.json"
    reg_file.write_text(json.dumps({"models": entries}))
    return {"zip": zip_path, "registry": str(reg_file), "cache": str(tmp_path / "cache"), "sha": sha}


def _no_leftovers(cache):
    if not os.path.isdir(cache):
        return True
    return all(not n.startswith(".") for n in os.listdir(cache))


def test_fetch_verifies_and_installs_once(released):
    reg = Registry(released["registry"], root=released["cache"])
    seen = []
    bundle = reg.fetch("demo-mr2ct", progress=lambda n, total: seen.append((n, total)), show_bar=False)
    assert bundle.id == "demo-mr2ct" and os.path.isfile(bundle.file("weights.pt"))
    assert seen and seen[-1][0] == seen[-1][1] == os.path.getsize(released["zip"])
    assert reg.is_installed(reg.get("demo-mr2ct"))
    reg.fetch("demo-mr2ct", show_bar=False)
    assert _Handler.hits["/good.zip"] == 1  # installed bundles are not downloaded again
    assert _no_leftovers(released["cache"])


def test_truncated_transfer_leaves_nothing(released):
    reg = Registry(released["registry"], root=released["cache"])
    with pytest.raises(DownloadError, match="truncated|cut off") as err:
        reg.fetch("demo-mr2ct".replace("demo-mr2ct", "m-cut"), show_bar=False)
    assert "deleted" in str(err.value)
    assert not os.path.exists(os.path.join(released["cache"], "m-cut"))
    assert _no_leftovers(released["cache"])


def test_corrupted_transfer_is_deleted(released):
    reg = Registry(released["registry"], root=released["cache"])
    with pytest.raises(DownloadError, match="sha256"):
        reg.fetch("m-bad", show_bar=False)
    assert not os.path.exists(os.path.join(released["cache"], "m-bad"))
    assert _no_leftovers(released["cache"])


def test_http_error_is_clear(released, server):
    _, base = server
    reg_file = os.path.join(os.path.dirname(released["registry"]), "R404.json")
    with open(reg_file, "w") as f:
        json.dump({"models": [{"id": "gone", "version": "1", "direction": "MR->CT",
                               "url": f"{base}/missing.zip", "sha256": "0" * 64}]}, f)
    with pytest.raises(DownloadError, match="Could not download"):
        Registry(reg_file, root=released["cache"]).fetch("gone", show_bar=False)


def test_tampered_bundle_is_refused(released):
    reg = Registry(released["registry"], root=released["cache"])
    bundle = reg.fetch("demo-mr2ct", show_bar=False)
    with open(bundle.file("weights.pt"), "ab") as f:
        f.write(b"evil")
    with pytest.raises(InputError, match="corrupt or was modified"):
        reg.resolve("demo-mr2ct")
    with pytest.raises(InputError, match="corrupt or was modified"):
        load_bundle(bundle.path)


def test_import_released_zip_offline(released):
    reg = Registry(released["registry"], root=released["cache"])
    bundle = reg.import_zip(released["zip"])
    assert bundle.id == "demo-mr2ct"
    assert reg.resolve("demo-mr2ct").path == bundle.path
    assert _Handler.hits == {}  # no network used


def test_import_refuses_wrong_file_for_registry_model(released, tmp_path):
    other = zip_folder(make_bundle(tmp_path / "other", payload=b"different"), str(tmp_path / "other.zip"))
    reg = Registry(released["registry"], root=released["cache"])
    with pytest.raises(InputError, match="not the released file"):
        reg.import_zip(other)


def test_import_local_model_and_remove(released, tmp_path):
    z = zip_folder(make_bundle(tmp_path / "mine", model_id="site-model"), str(tmp_path / "mine.zip"), prefix="mine/")
    reg = Registry(released["registry"], root=released["cache"])
    reg.import_zip(z)
    ids = {e.id: e.source for e in reg.entries()}
    assert ids["site-model"] == "local"
    removed = reg.remove("site-model")
    assert removed and not os.path.exists(removed[0])
    with pytest.raises(InputError, match="Unknown model"):
        reg.get("site-model")


def test_import_rejects_unsafe_and_non_zip(released, tmp_path):
    reg = Registry(released["registry"], root=released["cache"])
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(InputError, match="unsafe path"):
        reg.import_zip(str(evil))
    notzip = tmp_path / "n.zip"
    notzip.write_text("hello")
    with pytest.raises(InputError, match="not a zip"):
        reg.import_zip(str(notzip))
    assert not os.path.exists(tmp_path / "escape.txt")


def test_unknown_and_not_installed_messages(released):
    reg = Registry(released["registry"], root=released["cache"])
    with pytest.raises(InputError, match="Unknown model 'nope'.*demo-mr2ct"):
        reg.get("nope")
    with pytest.raises(InputError, match="not installed.*models fetch demo-mr2ct"):
        reg.resolve("demo-mr2ct")


def test_bundled_entry_checked_against_registry(tmp_path):
    make_bundle(tmp_path / "Models" / "b1", model_id="bundled-one")
    spec_sha = hashlib.sha256((tmp_path / "Models" / "b1" / "spec.json").read_bytes()).hexdigest()
    reg_file = tmp_path / "Models.json"
    reg_file.write_text(json.dumps({"models": [{"id": "bundled-one", "version": "1.0.0", "direction": "MR->CT",
                                                "path": "Models/b1", "sha256": spec_sha}]}))
    reg = Registry(str(reg_file), root=str(tmp_path / "cache"))
    assert reg.resolve("bundled-one").id == "bundled-one"
    with pytest.raises(InputError, match="cannot be removed"):
        reg.remove("bundled-one")
    spec = tmp_path / "Models" / "b1" / "spec.json"
    spec.write_text(spec.read_text().replace("test bundle", "changed"))
    with pytest.raises(InputError, match="registry's checksum"):
        reg.resolve("bundled-one")


def test_bad_registry_file(tmp_path):
    bad = tmp_path / "R.json"
    bad.write_text(json.dumps({"models": [{"id": "x", "version": "1", "direction": "MR->CT"}]}))
    with pytest.raises(CMSynthError, match="exactly one of 'url' or 'path'"):
        Registry(str(bad), root=str(tmp_path))
    bad.write_text(json.dumps({"models": [{"id": "x", "version": "1", "direction": "MR->CT", "path": "p", "colour": 1}]}))
    with pytest.raises(CMSynthError, match="unknown key"):
        Registry(str(bad), root=str(tmp_path))


def test_models_cli(released, cli, monkeypatch):
    monkeypatch.setenv("CMSYNTH_HOME", os.path.dirname(released["cache"]) + "/home")
    r = ["models", "--registry", released["registry"]]
    code, out, err = cli(*r, "list", "--json")
    assert code == 0 and {row["id"] for row in json.loads(out)} >= {"demo-mr2ct", "m-good"}
    assert not any(row["installed"] for row in json.loads(out))
    code, out, err = cli(*r, "fetch", "demo-mr2ct")
    assert code == 0, err
    code, out, _ = cli(*r, "path", "demo-mr2ct")
    assert code == 0 and out.strip().startswith(os.path.dirname(released["cache"]) + "/home")
    code, out, _ = cli(*r, "verify", "demo-mr2ct")
    assert code == 0 and "match their sha256" in out
    code, _, err = cli(*r, "fetch", "m-bad")
    assert code != 0 and "sha256" in err and "Traceback" not in err
    code, out, _ = cli(*r, "remove", "demo-mr2ct")
    assert code == 0 and "removed" in out
    code, _, err = cli(*r, "path", "demo-mr2ct")
    assert code != 0 and "not installed" in err
