"""The package's import graph, read from the source (ast), not by importing it: `python tests/import_graph.py`
prints each module's layer and what it imports from the package; tests/test_layers.py checks the rules.

Layers run one way: models and plain helpers (0) -> data, losses, metrics, diagnostics (1) -> inference (2) ->
the Hub export and cards (3) -> the command lines and train.py's helpers (4).
"""
import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

PACKAGE_DIR = Path(__file__).resolve().parents[1] / 'timm_csba'
PACKAGE = PACKAGE_DIR.name

# the command lines and what only they use (argparse types, train.py's run directory, the extras' one line)
CLI_MODULES = {'predict', 'evaluate', 'inspect', 'export', 'diagnose', 'distill', '__main__', 'hub.__main__',
               'data.__main__',
               'cli_args', 'dataset_flags', 'runs', 'extras'}
# library modules by layer, a module named by its first matching prefix (longest first)
LAYERS = {
    '': 0, 'models': 0, 'files': 0, 'lazy': 0, 'runtime': 0, 'fused_norm_act': 0,
    'data': 1, 'losses': 1, 'metrics': 1, 'diagnostics': 1, 'stats': 1, 'calibration': 1, 'sam': 1,
    'tensor_input': 1,
    'pretrained': 2, 'inference': 2, 'evaluation': 2, 'distillation': 2, 'module': 2, 'cam': 2, 'inspection': 2,
    'onnx_model': 2, 'onnx_export': 2,
    'hub': 3, 'model_card': 3,
}


def module_names() -> Dict[str, Path]:
    """Every module of the package, by dotted name relative to it ('' is the package itself, 'hub' its __init__)."""
    names = {}
    for path in sorted(PACKAGE_DIR.rglob('*.py')):
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        names['.'.join(parts)] = path
    return names


def _lazy_exports(tree: ast.Module) -> Dict[str, str]:
    """A package's PEP 562 table (_EXPORTS: name -> relative module), if it has one."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_EXPORTS' for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _resolve(module: str, is_package: bool, level: int, target: str) -> str:
    """The package-relative name of `from <level dots><target>` written in `module`; None outside the package."""
    if level == 0:
        return target[len(PACKAGE) + 1:] if target.startswith(PACKAGE + '.') else ('' if target == PACKAGE else None)
    base = module.split('.') if module else []
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return '.'.join([*base, *([target] if target else [])])


def imports(module: str, path: Path, names: Dict[str, Path], top_level_only: bool) -> Iterator[Tuple[str, int]]:
    """(imported module, line) for each import of a package module in `module`."""
    tree = ast.parse(path.read_text())
    is_package = path.name == '__init__.py'
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # imports under a try or if at module level count as top-level ones
        nodes = [n for stmt in tree.body for n in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef,
                                                                                          ast.ClassDef))]
    lazy = {name: _lazy_exports(ast.parse(p.read_text())) for name, p in names.items() if p.name == '__init__.py'}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(module, is_package, 0, alias.name)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node.level, node.module or '')
            if source is None:
                continue
            for alias in node.names:
                child = f'{source}.{alias.name}' if source else alias.name
                if child in names:
                    yield child, node.lineno
                elif alias.name in lazy.get(source, {}):  # a lazily exported name: the module that defines it
                    yield _resolve(source, True, lazy[source][alias.name].count('.'),
                                   lazy[source][alias.name].lstrip('.')), node.lineno
                else:
                    yield source, node.lineno


def function_level_imports(module: str, path: Path, names: Dict[str, Path]) -> List[Tuple[str, int]]:
    """Imports of package modules placed inside a function or class body of `module`."""
    top = set(imports(module, path, names, top_level_only=True))
    return sorted(set(imports(module, path, names, top_level_only=False)) - top)


def graph() -> Dict[str, Set[str]]:
    """module -> the package modules it imports at module level (its own parent packages left out: importing a
    submodule runs them first, so they are no edge of the module's)."""
    names = module_names()
    edges = {}
    for module, path in names.items():
        ancestors = {'.'.join(module.split('.')[:i]) for i in range(len(module.split('.')))} if module else set()
        edges[module] = {target for target, _ in imports(module, path, names, top_level_only=True)
                         if target != module and target not in ancestors}
    return edges


def find_cycle(edges: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a list of modules (first == last), or [] when the graph has none."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def layer(module: str) -> int:
    """4 for a command line, else the layer of the module's longest matching LAYERS prefix."""
    if module in CLI_MODULES:
        return 4
    prefixes = [p for p in LAYERS if p and (module == p or module.startswith(p + '.'))]
    return LAYERS[max(prefixes, key=len)] if prefixes else LAYERS['']


def main() -> None:
    edges = graph()
    for module in sorted(edges, key=lambda m: (layer(m), m)):
        targets = ', '.join(sorted(edges[module], key=lambda m: (layer(m), m))) or '-'
        print(f'{layer(module)}  {PACKAGE + ("." + module if module else ""):34s} -> {targets}')
    cycle = find_cycle(edges)
    print('cycle: ' + ' -> '.join(cycle) if cycle else 'no cycle', file=sys.stderr)


if __name__ == '__main__':
    main()
