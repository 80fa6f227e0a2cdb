"""The shape of the code: inference flows one way (no import cycles in asr/, lazy imports
included), Lightning stays in the training module, and functions stay short enough to read."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "asr"
MAX_LINES = 60  # longer needs a reason: a comment "# long: why" on the line of its def
# the one direction of inference: each module here may use those before it, never those after
INFERENCE = ["model", "recognizer", "decoding", "transcribe"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """asr modules that `path` imports anywhere (module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("asr")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("asr"):
                submodules = {f"{target}.{a.name}" for a in node.names}
                known = {m for m in submodules if m in MODULES}
                out |= known if known == submodules else {target} | known  # `from . import x`: x's a module
    return out


def graph() -> dict[str, set[str]]:
    return {name: {m for m in imports(p) if m in MODULES and m != name} for name, p in MODULES.items()}


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
    assert len(edges) > 20  # the walk saw the package


def test_inference_flows_one_way_and_lightning_stays_in_training():
    edges = graph()
    for i, name in enumerate(INFERENCE):
        later = {f"asr.{m}" for m in INFERENCE[i + 1 :]}
        assert not edges[f"asr.{name}"] & later, f"asr.{name} imports {edges[f'asr.{name}'] & later}"
    assert not edges["asr.writers"] & {f"asr.{m}" for m in INFERENCE}  # writers see results only
    assert "asr.train" not in set().union(*(edges[f"asr.{m}"] for m in INFERENCE + ["average", "evaluate"]))
    users = sorted(module_name(p) for p in ROOT.rglob("*.py") if "import lightning" in p.read_text()
                   or "from lightning" in p.read_text())
    assert users == ["asr.train"]


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


def test_beam_search_fits_on_one_screen():
    tree = ast.parse((ROOT / "decoding.py").read_text())
    (fn,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "beam_search"]
    assert fn.end_lineno - fn.lineno + 1 <= 50
