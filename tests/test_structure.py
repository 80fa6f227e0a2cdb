"""The shape of the code: packages named after the pipeline's stages, inference flowing one way
through them (no import cycles in asr/, lazy imports included), the ONNX runtime free of torch,
Lightning only in training, modules and functions short enough to read, and tests mirroring
the packages."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "asr"
TESTS = Path(__file__).resolve().parent
MAX_LINES = 60  # longer needs a reason: a comment "# long: why" on the line of its def
MAX_MODULE_LINES = 500  # longer needs a reason: a comment "# long module: why" in its first lines
# the one direction of inference: each package here may use those before it, never those after
INFERENCE = ["model", "decode", "transcribe"]
STAGES = {"audio", "text", "model", "decode", "transcribe", "data", "train", "evaluate", "onnx", "synth"}
# what a package may never import
FORBIDDEN = {
    "audio": {"model", "decode", "transcribe", "train", "evaluate", "onnx"},
    "text": {"audio", "model", "decode", "transcribe", "train", "evaluate", "onnx"},
    "model": {"decode", "transcribe", "train", "evaluate", "onnx"},
    "decode": {"transcribe", "train", "evaluate", "onnx"},
    "transcribe": {"train", "evaluate", "onnx"},
    "data": {"decode", "transcribe", "train", "evaluate", "onnx"},
    "evaluate": {"train", "onnx"},
    "onnx": {"train", "evaluate", "transcribe"},
}
TORCH_FREE = ["asr.onnx.runtime", "asr.onnx.search", "asr.decode.options", "asr.decode.interfaces",
              "asr.decode.nonspeech", "asr.audio.vad", "asr.audio.segment"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path, prefix: str = "asr") -> set[str]:
    """Modules starting with `prefix` that `path` imports anywhere (module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == prefix}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] == prefix:
                submodules = {f"{target}.{a.name}" for a in node.names}
                known = {m for m in submodules if m in MODULES}
                out |= known if known == submodules else {target} | known  # `from . import x`: x's a module
    return out


def graph() -> dict[str, set[str]]:
    """Each module -> the asr modules it imports, with the packages whose __init__ that runs."""
    edges = {}
    for name, p in MODULES.items():
        targets = {m for m in imports(p) if m in MODULES and m != name}
        parents = {".".join(t.split(".")[:i]) for t in targets for i in range(2, t.count(".") + 1)}
        edges[name] = targets | {m for m in parents if m in MODULES and m != name and not name.startswith(m + ".")}
    return edges


def package(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in edges[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert len(edges) > 40  # the walk saw the package


def test_the_tree_shows_the_stages():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages == STAGES
    loose = sorted(p.name for p in ROOT.glob("*.py"))  # the public API, the command, and what every stage shares
    assert loose == ["__init__.py", "__main__.py", "cli.py", "config.py", "results.py", "storage.py"]
    for pkg in STAGES:
        doc = ast.get_docstring(ast.parse((ROOT / pkg / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"asr/{pkg}/__init__.py needs a docstring saying what the package does"


def test_packages_import_only_earlier_stages():
    edges = graph()
    for name, targets in edges.items():
        bad = {t for t in targets if package(t) in FORBIDDEN.get(package(name), set())}
        assert not bad, f"{name} imports {sorted(bad)}"
    for i, pkg in enumerate(INFERENCE):  # inference flows one way: model file -> search -> files
        later = set(INFERENCE[i + 1 :])
        for name in (n for n in edges if package(n) == pkg):
            assert not {package(t) for t in edges[name]} & later, f"{name} imports {edges[name]}"
    assert {package(t) for t in edges["asr.transcribe.writers"]} <= {"results", "transcribe"}  # results only
    assert not {t for t in edges["asr.transcribe.writers"] if package(t) == "transcribe"}


def test_onnx_runtime_never_imports_torch():
    edges = graph()
    for start in TORCH_FREE:
        for name in {start} | reachable(start, edges):
            assert not imports(MODULES[name], "torch"), f"{start} reaches {name}, which imports torch"


def test_lightning_stays_in_training():
    users = sorted(module_name(p) for p in ROOT.rglob("*.py")
                   if imports(p, "lightning") or imports(p, "pytorch_lightning"))
    assert users and all(u.startswith("asr.train.") for u in users), users
    edges = graph()
    for name in edges:
        if package(name) in {"model", "decode", "transcribe", "evaluate", "onnx", "data"}:
            assert "asr.train.trainer" not in reachable(name, edges), name


def test_functions_are_short_or_say_why():
    long = []
    for path in ROOT.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES and "# long:" not in lines[node.lineno - 1]:
                    long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over %d lines without a reason:\n%s" % (MAX_LINES, "\n".join(long))


def test_modules_are_short_or_say_why():
    long = [f"{p.relative_to(ROOT.parent)} ({n} lines)" for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
            and "# long module:" not in "\n".join(p.read_text().splitlines()[:30])]
    assert not long, "modules over %d lines without a reason:\n%s" % (MAX_MODULE_LINES, "\n".join(long))


def test_beam_search_fits_on_one_screen():
    tree = ast.parse((ROOT / "decode" / "search.py").read_text())
    (fn,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "beam_search"]
    assert fn.end_lineno - fn.lineno + 1 <= 50


def test_tests_mirror_the_packages():
    """Unit tests sit in tests/<package>/ beside what they test; slow end-to-end ones in tests/e2e/."""
    folders = {p.parent.name for p in TESTS.rglob("test_*.py") if p.parent != TESTS}
    assert folders <= STAGES | {"e2e"}, folders - STAGES
    assert {"audio", "text", "model", "decode", "transcribe", "data", "train", "onnx"} <= folders
    for name in ("segment", "writers", "ctc"):  # each such module has a test file a reader can find
        assert list(TESTS.rglob(f"test_{name}.py")), f"no tests/*/test_{name}.py"
