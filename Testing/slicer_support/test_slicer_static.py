"""Static checks of the Slicer extension: the mistakes that only show on a user's computer.

- every .py of the module and its library is packaged (MODULE_PYTHON_SCRIPTS), every listed
  script and resource exists, every resource file of the module and every file of a bundled model
  is listed;
- every widget the module code uses (``self.ui.<name>``) exists in the .ui, and every widget bound
  to the parameter node names a parameter that exists;
- the module and the library parse as Python 3.9 (Slicer 5.8);
- the module file imports nothing but the standard library, Slicer's own modules (slicer, qt,
  ctk, vtk) and its library at file scope, and runs no code at import;
- the library never imports Qt, and only slicer_support/mrml.py imports slicer;
- the ExtensionsIndex description has only keys the index schema allows and its
  build_dependencies equal EXTENSION_DEPENDS of CMakeLists.txt; the icons are 128 x 128 PNGs.
"""

import ast
import json
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET

import pytest
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
ROOT = os.path.dirname(HERE)
MODULE_DIR = os.path.join(ROOT, "CrossModalitySynth")
MODULE_FILE = os.path.join(MODULE_DIR, "CrossModalitySynth.py")
LIB_DIR = os.path.join(MODULE_DIR, "CrossModalitySynthLib")
UI_FILE = os.path.join(MODULE_DIR, "Resources", "UI", "CrossModalitySynth.ui")
INDEX_JSON = os.path.join(ROOT, "Resources", "ExtensionsIndex", "CrossModalitySynth.json")

# Slicer/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json (and v1.0.2): additionalProperties false
INDEX_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
              "build_subdirectory", "enabled", "tier"}
INDEX_REQUIRED = {"$schema", "category", "scm_url"}
SLICER_MODULES = {"slicer", "qt", "ctk", "vtk", "CrossModalitySynthLib", "__main__"}


# --------------------------------------------------------------------------- helpers


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _cmake_list(cmake_text, variable):
    """Entries of ``set(VARIABLE ...)`` with ${MODULE_NAME} substituted (comments removed first)."""
    code = "\n".join(line.split("#", 1)[0] for line in cmake_text.splitlines())
    m = re.search(r"set\(\s*" + variable + r"\b(.*?)\)", code, re.S)
    assert m, f"set({variable} ...) not found"
    name = re.search(r"set\(\s*MODULE_NAME\s+(\w+)\s*\)", code).group(1)
    return [tok.replace("${MODULE_NAME}", name) for tok in m.group(1).split()]


def _cmake_var(cmake_text, variable):
    m = re.search(r"set\(\s*" + variable + r'\s+"([^"]*)"\s*\)', cmake_text)
    assert m, f"set({variable} \"...\") not found"
    return m.group(1)


def _python_files(folder):
    out = []
    for d, dirs, files in os.walk(folder):
        dirs[:] = [x for x in dirs if x not in ("__pycache__", "Testing")]
        out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return sorted(out)


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", head[16:24])


def _module_tree():
    return ast.parse(_read(MODULE_FILE), MODULE_FILE)


# --------------------------------------------------------------------------- CMake


def test_every_python_file_is_packaged():
    cmake = _read(os.path.join(MODULE_DIR, "CMakeLists.txt"))
    code = "\n".join(line.split("#", 1)[0] for line in cmake.splitlines())
    assert "GLOB" not in code.upper(), "list the scripts explicitly, no file(GLOB ...)"
    listed = _cmake_list(cmake, "MODULE_PYTHON_SCRIPTS")
    assert len(listed) == len(set(listed)), "a script is listed twice"
    on_disk = {os.path.relpath(p, MODULE_DIR).replace(os.sep, "/") for p in _python_files(MODULE_DIR)}
    missing = sorted(on_disk - set(listed))
    assert not missing, f"not in MODULE_PYTHON_SCRIPTS of CrossModalitySynth/CMakeLists.txt: {missing}"
    absent = sorted(set(listed) - on_disk)
    assert not absent, f"listed in MODULE_PYTHON_SCRIPTS but not on disk: {absent}"


def test_every_resource_is_listed_and_exists():
    cmake = _read(os.path.join(MODULE_DIR, "CMakeLists.txt"))
    listed = _cmake_list(cmake, "MODULE_PYTHON_RESOURCES")
    absent = [r for r in listed if not os.path.isfile(os.path.join(MODULE_DIR, r))]
    assert not absent, f"listed in MODULE_PYTHON_RESOURCES but not on disk: {absent}"
    # every icon and UI file is packaged
    for sub in ("Icons", "UI"):
        folder = os.path.join(MODULE_DIR, "Resources", sub)
        for f in os.listdir(folder):
            assert f"Resources/{sub}/{f}" in listed, f"Resources/{sub}/{f} is not in MODULE_PYTHON_RESOURCES"
    assert "Resources/Models.json" in listed
    # every file of every bundled model (Models.json "path" entries) is packaged
    with open(os.path.join(MODULE_DIR, "Resources", "Models.json")) as f:
        registry = json.load(f)
    for entry in registry.get("models", []):
        if not entry.get("path"):
            continue
        folder = os.path.join(MODULE_DIR, "Resources", entry["path"])
        with open(os.path.join(folder, "spec.json")) as f:
            spec = json.load(f)
        for name in ["spec.json"] + sorted(spec["files"]):
            rel = f"Resources/{entry['path']}/{name}"
            assert rel in listed, f"bundled model file {rel} is not in MODULE_PYTHON_RESOURCES"
    # nothing under Resources/Models that is not a listed file
    models_root = os.path.join(MODULE_DIR, "Resources", "Models")
    if os.path.isdir(models_root):
        for d, _, files in os.walk(models_root):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), MODULE_DIR).replace(os.sep, "/")
                assert rel in listed, f"{rel} is in the module's Resources but not packaged"


def test_module_cmake_follows_the_template():
    cmake = _read(os.path.join(MODULE_DIR, "CMakeLists.txt"))
    assert "slicerMacroBuildScriptedModule(" in cmake and "WITH_GENERIC_TESTS" in cmake
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py\s*\)", cmake)
    assert "add_subdirectory(Testing)" in cmake
    testing = _read(os.path.join(MODULE_DIR, "Testing", "CMakeLists.txt"))
    assert "add_subdirectory(Python)" in testing
    registered = re.findall(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{CMAKE_CURRENT_SOURCE_DIR\}/(\S+?)\s*\)",
                            _read(os.path.join(MODULE_DIR, "Testing", "Python", "CMakeLists.txt")))
    scripts = sorted(f for f in os.listdir(os.path.join(MODULE_DIR, "Testing", "Python")) if f.endswith(".py"))
    assert registered and sorted(registered) == scripts
    for script in scripts:
        ast.parse(_read(os.path.join(MODULE_DIR, "Testing", "Python", script)), feature_version=(3, 9))


def test_extension_cmake_follows_the_template():
    cmake = _read(os.path.join(ROOT, "CMakeLists.txt"))
    for needed in ("project(CrossModalitySynth)", "find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                   "add_subdirectory(CrossModalitySynth)", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                   "include(${Slicer_EXTENSION_CPACK})"):
        assert needed in cmake, needed
    for var in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert _cmake_var(cmake, var).strip(), var
    assert _cmake_var(cmake, "EXTENSION_DEPENDS").split() == ["PyTorch"]
    # the icon and screenshot URLs point at files of this repository
    for var, path in (("EXTENSION_ICONURL", "Resources/CrossModalitySynth.png"),
                      ("EXTENSION_SCREENSHOTURLS", "Resources/Screenshot.png")):
        url = _cmake_var(cmake, var)
        assert url.startswith("https://") and url.endswith("/main/" + path), url
        assert os.path.isfile(os.path.join(ROOT, path)), path


def test_extensions_index_description():
    with open(INDEX_JSON) as f:
        entry = json.load(f)
    assert set(entry) <= INDEX_KEYS, f"keys the index schema does not allow: {sorted(set(entry) - INDEX_KEYS)}"
    assert INDEX_REQUIRED <= set(entry)
    assert entry["category"] == "Image Synthesis"
    assert re.match(r"https://raw\.githubusercontent\.com/Slicer/Slicer/main/Schemas/"
                    r"slicer-extension-catalog-entry-schema-v1\.0\.[12]\.json#$", entry["$schema"])
    assert entry["scm_url"].startswith("https://github.com/") and entry["scm_url"].endswith(".git")
    assert isinstance(entry.get("scm_revision", ""), str)
    assert entry.get("tier", 1) in (1, 3, 5)
    depends = _cmake_var(_read(os.path.join(ROOT, "CMakeLists.txt")), "EXTENSION_DEPENDS").split()
    depends = [] if depends == ["NA"] else depends
    assert entry.get("build_dependencies", []) == depends


def test_icons_and_screenshot():
    assert _png_size(os.path.join(MODULE_DIR, "Resources", "Icons", "CrossModalitySynth.png")) == (128, 128)
    assert _png_size(os.path.join(ROOT, "Resources", "CrossModalitySynth.png")) == (128, 128)
    w, h = _png_size(os.path.join(ROOT, "Resources", "Screenshot.png"))
    assert w >= 600 and h >= 300


def test_resources_stay_small():
    total = 0
    for folder in (os.path.join(MODULE_DIR, "Resources", "Icons"), os.path.join(MODULE_DIR, "Resources", "UI"),
                   os.path.join(ROOT, "Resources", "ExtensionsIndex")):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    total += os.path.getsize(os.path.join(ROOT, "Resources", "CrossModalitySynth.png"))
    total += os.path.getsize(os.path.join(ROOT, "Resources", "Screenshot.png"))
    assert total < 2_000_000, f"{total} bytes of icons, UI and screenshots: keep large files in release assets"


# --------------------------------------------------------------------------- .ui


def _ui_widgets():
    tree = ET.parse(UI_FILE)
    names = {w.get("name"): w for w in tree.iter("widget")}
    return tree, names


def test_widgets_used_by_the_module_exist_in_the_ui():
    _, names = _ui_widgets()
    used = set()
    for node in ast.walk(_module_tree()):
        # self.ui.<name> (and widget.ui.<name>)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui":
            used.add(node.attr)
        # getattr(self.ui, "<name>")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) >= 2:
            target, what = node.args[0], node.args[1]
            if isinstance(target, ast.Attribute) and target.attr == "ui":
                if isinstance(what, ast.Constant):
                    used.add(what.value)
                elif isinstance(what, ast.Call) and isinstance(what.func, ast.Attribute) and what.func.attr == "format":
                    pattern = what.func.value.value  # "confidence{}Button".format(i) for i in 1..5
                    used.update(pattern.format(i) for i in range(1, 6))
        # names listed in tuples of widget names (ReaderModeChrome.SECTIONS / BUTTONS)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("SECTIONS", "BUTTONS") for t in node.targets):
            used.update(e.value for e in node.value.elts)
    assert len(used) > 40
    missing = sorted(used - set(names))
    assert not missing, f"the module uses widgets the .ui does not have: {missing}"


def _parameter_names():
    for node in _module_tree().body:
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", getattr(d, "attr", None)) == "parameterNodeWrapper" for d in node.decorator_list):
            return {s.target.id: s for s in node.body if isinstance(s, ast.AnnAssign)}
    raise AssertionError("no @parameterNodeWrapper class in the module")


def test_bound_widgets_name_existing_parameters():
    tree, names = _ui_widgets()
    params = _parameter_names()
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = (widget.get("class"), prop.find("string").text)
    assert len(bound) >= 15
    unknown = sorted(f"{w} -> {p}" for w, (_, p) in bound.items() if p not in params)
    assert not unknown, f"widgets bound to parameters that do not exist: {unknown}"
    # the widget kind fits the parameter type (what the parameterNodeWrapper connectors accept)
    for widget, (cls, param) in bound.items():
        annotation = ast.unparse(params[param].annotation)
        if cls == "qMRMLNodeComboBox":
            assert "vtkMRML" in annotation, (widget, annotation)
            node_types = [s.text for p in names[widget].findall("property") if p.get("name") == "nodeTypes"
                          for s in p.iter("string")]
            assert node_types and all(t in annotation for t in node_types), (widget, node_types, annotation)
        elif cls == "QComboBox":
            assert "Choice(" in annotation, (widget, annotation)
        elif cls == "QCheckBox":
            assert annotation == "bool", (widget, annotation)
        elif cls == "QLineEdit":
            assert annotation == "str", (widget, annotation)
        else:
            raise AssertionError(f"no parameter connector for {cls} ({widget})")
    # the ui's MRML widgets get the scene
    receivers = {c.find("receiver").text for c in tree.iter("connection")
                 if c.find("slot").text == "setMRMLScene(vtkMRMLScene*)"}
    combos = {w.get("name") for w in tree.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    assert combos == receivers


# --------------------------------------------------------------------------- Python 3.9, imports


def test_module_and_library_parse_as_python_3_9():
    files = [MODULE_FILE] + _python_files(LIB_DIR)
    assert len(files) > 50
    for path in files:
        try:
            ast.parse(_read(path), path, feature_version=(3, 9))
        except SyntaxError as exc:
            pytest.fail(f"{os.path.relpath(path, ROOT)} is not valid Python 3.9 (Slicer 5.8): {exc}")


def _runtime_310_features(tree):
    """Python 3.10+ features that parse under 3.9 but fail when the code runs there."""
    found = []
    for n in ast.walk(tree):
        annotations = []
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = n.args.posonlyargs + n.args.args + n.args.kwonlyargs + [a for a in (n.args.vararg, n.args.kwarg) if a]
            annotations += [a.annotation for a in args if a.annotation is not None]
            if n.returns is not None:
                annotations.append(n.returns)
        elif isinstance(n, ast.AnnAssign):
            annotations.append(n.annotation)
        for a in annotations:
            if any(isinstance(m, ast.BinOp) and isinstance(m.op, ast.BitOr) for m in ast.walk(a)):
                found.append(f"line {n.lineno}: 'X | Y' annotation (use typing.Optional / Union)")
        if isinstance(n, ast.Call):
            name = getattr(n.func, "id", getattr(n.func, "attr", ""))
            keywords = {k.arg for k in n.keywords}
            if name == "zip" and "strict" in keywords:
                found.append(f"line {n.lineno}: zip(strict=...)")
            if name == "dataclass" and keywords & {"slots", "kw_only"}:
                found.append(f"line {n.lineno}: dataclass(slots/kw_only)")
    return found


def test_no_python_3_10_runtime_features():
    problems = []
    for path in [MODULE_FILE] + _python_files(LIB_DIR):
        problems += [f"{os.path.relpath(path, ROOT)} {p}" for p in _runtime_310_features(ast.parse(_read(path), path))]
    assert not problems, "fails on Python 3.9 (Slicer 5.8): " + "; ".join(problems)


def _top_level_module(node):
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if node.level:
        return []
    return [node.module.split(".")[0]]


def test_module_file_imports_only_slicer_and_stdlib_at_file_scope():
    stdlib = set(sys.stdlib_module_names)
    third_party = []
    for node in _module_tree().body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _top_level_module(node):
                if name not in stdlib and name not in SLICER_MODULES:
                    third_party.append(name)
    assert not third_party, f"imported at file scope of CrossModalitySynth.py: {third_party}"


def _is_constant_expression(node):
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant_expression(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_is_constant_expression(k) and _is_constant_expression(v) for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expression(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant_expression(node.left) and _is_constant_expression(node.right)
    return False


def test_no_code_runs_when_the_module_is_imported():
    allowed_decorators = {"parameterNodeWrapper"}
    for node in _module_tree().body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        if isinstance(node, ast.ClassDef):
            for d in node.decorator_list:
                assert getattr(d, "id", None) in allowed_decorators, f"class decorator at line {node.lineno}"
            for b in node.bases:
                assert isinstance(b, (ast.Name, ast.Attribute)), f"computed base class at line {node.lineno}"
            for stmt in node.body:  # class bodies: methods, docstrings, constants, annotations
                ok = isinstance(stmt, (ast.FunctionDef, ast.AnnAssign)) or (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)) or (
                    isinstance(stmt, ast.Assign) and _is_constant_expression(stmt.value))
                assert ok, f"statement runs code in class {node.name} (line {stmt.lineno})"
            continue
        if isinstance(node, ast.Assign) and _is_constant_expression(node.value):
            continue
        pytest.fail(f"module-level statement runs code at import: line {node.lineno}: {ast.unparse(node)[:80]}")


def test_library_imports_no_qt_and_slicer_only_in_the_bridge():
    for path in _python_files(LIB_DIR):
        tree = ast.parse(_read(path), path)
        rel = os.path.relpath(path, ROOT)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = _top_level_module(node)
                assert not {"qt", "ctk", "PythonQt"} & set(names), f"{rel} imports Qt"
                if "slicer" in names:
                    assert path.endswith(os.path.join("slicer_support", "mrml.py")), f"{rel} imports slicer (only slicer_support/mrml.py may)"
    # heavy packages are imported when used, not at file scope. The two image-handling modules
    # (the MRML bridge and the reader's trial scene work on SimpleITK images) may import them at
    # file scope because no other module of the package imports them at file scope.
    converters = {"mrml.py", "reader_scene.py"}
    for path in _python_files(os.path.join(LIB_DIR, "slicer_support")):
        tree = ast.parse(_read(path), path)
        name = os.path.basename(path)
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = set(_top_level_module(node))
                if name not in converters:
                    assert not names & {"torch", "monai", "matplotlib", "SimpleITK"}, \
                        f"{os.path.relpath(path, ROOT)} imports {names} at file scope"
                    if isinstance(node, ast.ImportFrom) and node.level == 1:
                        assert node.module not in ("mrml", "reader_scene"), \
                            f"{os.path.relpath(path, ROOT)} imports .{node.module} at file scope"
                else:
                    assert not names & {"torch", "monai", "matplotlib"}, f"{os.path.relpath(path, ROOT)} imports {names}"


def test_the_library_helpers_the_module_calls_exist():
    """Names the module imports lazily from the library must exist there."""
    import importlib
    import types

    tree = _module_tree()
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("CrossModalitySynthLib"):
            mod = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(mod, alias.name):
                    importlib.import_module(f"{node.module}.{alias.name}")  # a submodule
                value = getattr(mod, alias.name)
                if isinstance(value, types.ModuleType):
                    modules[alias.asname or alias.name] = value
    # attributes used on imported library modules (models.describe, views.assign_compare_views ...)
    used = [(n.value.id, n.attr) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules]
    assert used
    missing = sorted(f"{m}.{a}" for m, a in used if not hasattr(modules[m], a))
    assert not missing, f"the module calls library functions that do not exist: {missing}"
